"""The champion and its retraining: the training session that promotes the best candidate (session.py,
champion.py), and the loop from verified feedback to a gated challenger (feedback.py, retrain.py, gate.py,
report.py). The top wing: it uses the pipeline and the families, nothing imports it but the command line."""
