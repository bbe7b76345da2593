"""Where and how a run computes: devices and placement, torch.distributed, compilation,
stop signals, and atomic file writes."""
