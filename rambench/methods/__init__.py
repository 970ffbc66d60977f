from rambench.methods.base import (
    FAMILIES,
    InputSpec,
    Method,
    MethodContext,
    mask_absent,
    methods,
    optimiser_groups,
    params_dict,
)

__all__ = ["FAMILIES", "InputSpec", "Method", "MethodContext", "mask_absent", "methods",
           "optimiser_groups", "params_dict"]
