"""The shared pipeline every family's candidates go through (runner.py): evaluation, behavioural checks, ONNX
export with parity, latency against the reference graph, the registered pyfunc, the comparison report.
It knows families only through `Candidate` (families/candidate.py) and never imports the promotion wing."""
