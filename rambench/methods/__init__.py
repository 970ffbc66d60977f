from rambench.methods.base import FAMILIES, Method, MethodContext, methods, params_dict

__all__ = ["FAMILIES", "Method", "MethodContext", "methods", "params_dict"]
