"""ecc: compile libbpf CO-RE programs into eunomia-format packages."""

__version__ = "0.1.0"
