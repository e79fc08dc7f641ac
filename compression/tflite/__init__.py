"""TFLite files: converting a Keras model to ``.tflite`` (in the isolation child), reading the weights a
converted file really holds, and what a user downloads (zip, TFLite Micro C++ pair, the reproduce script and
its template).

May import: core, ``inputs``.
"""
