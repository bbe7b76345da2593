"""Deployment of a searched child as a real 1-bit network: the child rebuilt as a Larq/Keras
model and converted by Larq Compute Engine (LCE) into a .tflite whose 1-bit convs are LCE binary
convolutions (XNOR-popcount), checked against the PyTorch child, sized and timed.

Everything here needs the optional `deploy` extra (TensorFlow 2.16, tf-keras, Larq, LCE 0.16):
`lightnas.deploy.backend` imports it; modules that do not need TensorFlow (this package,
`lightnas.deploy.command`'s argument parsing) import nothing of it, so that `lightnas` without
the extra still starts and says which extra a deployment needs.
"""
