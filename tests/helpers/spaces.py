"""The shipped graph-file spaces (configs/spaces) at digits' size: the same graphs, narrower
(`model.kwargs.params`), for the tests that search, export or deploy them."""

NARROW_PARAMS = {
    "meliusnet22_bits": {
        "stem": 16,
        "growth": 8,
        "transition1": 16,
        "transition2": 24,
        "transition3": 24,
    },
    "bireal18_kernels": {"width1": 8, "width2": 16, "width3": 16, "width4": 32},
}
