import atexit
import os
import shutil
import tempfile

# Qt aborts without a display unless told to render offscreen; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))
# Decoded folders go to a throw-away cache, never the user's ~/.cache (child processes
# that the tests start inherit it); tests of the cache point it at their own folder.
os.environ["LATENT_EXPLORER_CACHE"] = tempfile.mkdtemp(prefix="latent-explorer-test-cache-")
atexit.register(shutil.rmtree, os.environ["LATENT_EXPLORER_CACHE"], True)
