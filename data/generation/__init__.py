"""Making event stores from physics: Pythia 8 events through a CMS-like detector response, or users'
Delphes ROOT files.

``pythia`` (the samples, their Pythia settings, one chunk of selected events), ``detector`` (the numpy
detector response and its images), ``jets`` (anti-kT clustering with fastjet, b-tagging and the event's jet
quantities), ``generate`` (``python -m data.generation.generate``: signal and QCD slices in parallel into one
store), ``convert_delphes`` (``python -m data.generation.convert_delphes``). The cuts themselves live in
``data.selection``. Needs the ``physics`` extra (pythia8mc, fastjet, uproot, awkward).
"""
