"""Code shared by training and serving: text processing, the model manifest, ONNX Runtime inference, the service."""
