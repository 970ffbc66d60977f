"""The method interface: an nn.Module with `training_loss(batch)` and `forward(batch)`.

The harness owns everything else (optimiser, schedule, epochs, device, seeds, files, the
grid). A method only declares its hyper-parameters as a dataclass `Params`, so that the
harness can set them from `--set name.key=value` or a grid file and record them.

What a method is told about the data is a `MethodContext`: the modalities with their
`InputSpec` (kind, per-sample input shape, frames, sample rate), the number of classes,
the feature width and an encoder factory. Optional hooks on `Method`: `supports(ctx)`
(decline a dataset, with the reason), `param_groups()` (per-module learning-rate scales)
and the helper `mask_absent(features, batch)` (also `rambench.batch.mask_absent`, for fusion
blocks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor, nn

from rambench.batch import Batch, mask_absent
from rambench.registry import Registry

if TYPE_CHECKING:
    from rambench.datasets.base import Dataset, ModalitySpec

FAMILIES = ("reference", "vanilla", "augmentation", "consistency", "imputation", "uncertainty",
            "imbalance", "dynamic fusion")


@dataclass(frozen=True)
class InputSpec:
    """What a method sees of one modality: a frozen view of the dataset's `ModalitySpec`
    in the layout of `batch.inputs[name]` (see `rambench.datasets.to_batch`).

    kind: "image" or "audio".
    shape: the per-sample shape of the input tensor: (C, H, W) for still images,
        (T, C, H, W) for clips of T frames, (samples,) for audio waveforms. (The dataset's
        spec holds the raw storage layout, channels last; this is the tensor layout.)
    frames: T for image clips, 1 for still images and for audio.
    sample_rate: Hz for audio, None otherwise.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    frames: int = 1
    sample_rate: int | None = None

    @classmethod
    def from_modality_spec(cls, spec: ModalitySpec) -> InputSpec:
        shape = tuple(int(s) for s in spec.shape)
        if spec.kind == "image":  # raw ([T,] H, W, C) -> tensor ([T,] C, H, W)
            if len(shape) not in (3, 4):
                raise ValueError(f"image modality {spec.name!r}: expected a raw shape "
                                 f"([T,] H, W, C); got {shape}")
            frames = shape[0] if len(shape) == 4 else 1
            shape = (*shape[:-3], shape[-1], *shape[-3:-1])
            return cls(spec.name, "image", shape, frames, spec.sample_rate)
        return cls(spec.name, spec.kind, shape, 1, spec.sample_rate)

    @property
    def is_clip(self) -> bool:
        """A multi-frame image input (B, T, C, H, W)."""
        return self.kind == "image" and len(self.shape) == 4


@dataclass(frozen=True)
class MethodContext:
    """What the harness tells a method about the data: modalities, classes, encoders, and
    each modality's `InputSpec` (`specs`; built from the dataset by `from_dataset`).

    The four-argument form `MethodContext(modalities, num_classes, feature_dim,
    make_encoder)` still works: such a context has no specs (`kind(m)` is None). `specs`
    may also be given the dataset's `ModalitySpec`s; they are turned into `InputSpec`s.

        ctx.of_kind("image")   # ('visual',): image modalities, in modality order
        ctx.kind("audio")      # 'audio'
        ctx.spec("visual")     # InputSpec(name='visual', kind='image', shape=(3, 3, 32, 32),
                               #           frames=3, sample_rate=None)
    """

    modalities: tuple[str, ...]
    num_classes: int
    feature_dim: int
    make_encoder: Callable[[str], nn.Module]  # modality -> module mapping inputs to (B, dim)
    specs: Mapping[str, InputSpec] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        specs = {m: s if isinstance(s, InputSpec) else InputSpec.from_modality_spec(s)
                 for m, s in dict(self.specs).items()}
        unknown = set(specs) - set(self.modalities)
        missing = [m for m in self.modalities if m not in specs]
        if unknown or (specs and missing):
            raise ValueError(f"MethodContext.specs must describe exactly the modalities "
                             f"{', '.join(self.modalities)}; got {', '.join(specs)}")
        object.__setattr__(self, "specs", specs)

    @classmethod
    def from_dataset(cls, dataset: Dataset, feature_dim: int,
                     make_encoder: Callable[[str], nn.Module] | None = None) -> MethodContext:
        """The context of `dataset`; encoders default to each modality's registered
        encoder (built only when a method asks for one)."""
        specs = dict(dataset.modalities)

        def registered_encoder(m: str) -> nn.Module:
            from rambench.models import encoders

            return encoders.get(specs[m].encoder)(specs[m], feature_dim)

        return cls(tuple(specs), dataset.num_classes, feature_dim,
                   make_encoder or registered_encoder, specs)

    def spec(self, modality: str) -> InputSpec:
        """The InputSpec of `modality` (KeyError naming the known ones if there is none)."""
        try:
            return self.specs[modality]
        except KeyError:
            known = ", ".join(self.specs) or "none: this context was built without specs"
            raise KeyError(f"no spec for modality {modality!r} (specs: {known})") from None

    def kind(self, modality: str) -> str | None:
        """"image" or "audio"; None for a context built without specs."""
        spec = self.specs.get(modality)
        return spec.kind if spec is not None else None

    def of_kind(self, kind: str) -> tuple[str, ...]:
        """The modalities of `kind` ("image", "audio"), in modality order."""
        return tuple(m for m in self.modalities if self.kind(m) == kind)


@dataclass
class NoParams:
    pass


class Method(nn.Module):
    """Base class. Subclasses set `family`, `citation` and optionally `Params`."""

    family: ClassVar[str] = "vanilla"
    citation: ClassVar[str] = ""
    # The authors' code this implementation follows, "owner/repo@commit:path" ("" for none).
    reference: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    # Evaluation reuses `encoders`' outputs of clean (and zero-filled) inputs across cells
    # (`rambench.feature_cache`); False where an encoder is not a deterministic function of
    # each sample in eval mode.
    reuse_features: ClassVar[bool] = True

    def __init__(self, ctx: MethodContext, params: Any = None):
        super().__init__()
        self.ctx = ctx
        self.params = params if params is not None else self.Params()
        self.encoders = nn.ModuleDict({m: ctx.make_encoder(m) for m in self.used_modalities()})

    @classmethod
    def supports(cls, ctx: MethodContext) -> str | None:
        """None if the method can run on the data `ctx` describes, else the reason it
        cannot (e.g. "needs an 'audio' modality; the dataset has visual"). Checked before
        the method is built: `--method all` skips an unsupported method with a warning,
        a method named explicitly is a usage error that gives the reason."""
        return None

    def used_modalities(self) -> tuple[str, ...]:
        """The modalities this method reads (unimodal baselines override this)."""
        return self.ctx.modalities

    def encode(self, batch: Batch) -> dict[str, Tensor]:
        return {m: enc(batch.inputs[m]) for m, enc in self.encoders.items()}

    @staticmethod
    def mask_absent(features: Mapping[str, Tensor],
                    present: Batch | Mapping[str, Tensor]) -> dict[str, Tensor]:
        """`features` (modality -> (B, ...)) with the rows of absent modalities set to 0;
        `present` is a Batch or its `present` dict. See the module function `mask_absent`."""
        return mask_absent(features, present)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Losses for one training batch; must hold `loss` (the one to minimise)."""
        raise NotImplementedError

    def forward(self, batch: Batch) -> Tensor:
        """Class logits (B, num_classes) for a batch."""
        raise NotImplementedError

    def validation_logits(self, batch: Batch) -> Tensor:
        """The logits the harness keeps the best epoch by (validation accuracy, eval mode);
        default: `forward`. A method whose authors select with another prediction than
        the one they test with (e.g. before a test-time calibration) overrides this."""
        return self(batch)

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        """Hook for schedules inside a loss (e.g. an annealed KL weight); default: nothing."""

    def param_groups(self) -> list[dict[str, Any]] | None:
        """Optional per-module optimiser settings; None (the default): one group, every
        parameter at the harness's learning rate `train.lr`.

        Otherwise a list of dicts, each with `params` (a module, or an iterable of
        parameters or modules) and optionally `lr_scale`, a MULTIPLIER of `train.lr`
        (default 1), so `--set train.lr=...` and the harness's schedule (one-cycle or
        step decay) still apply to every group; an absolute `lr` is refused. Other keys
        (e.g. `weight_decay`) go to the torch optimiser as they are. Parameters that no
        group names are trained in one more group at scale 1; a parameter in two groups
        is an error.

            def param_groups(self):
                return [{"params": self.encoders, "lr_scale": 0.1}]  # the rest at 1x
        """
        return None

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


def _group_params(value: Any) -> list[nn.Parameter]:
    items = [value] if isinstance(value, (nn.Module, Tensor)) else list(value)
    out: list[nn.Parameter] = []
    for item in items:
        out += list(item.parameters()) if isinstance(item, nn.Module) else [item]
    return out


def optimiser_groups(method: Method, lr: float) -> Iterable[Any]:
    """What to give a torch optimiser for `method` at base learning rate `lr`:
    `method.parameters()` when it has no `param_groups()`, else the groups with
    `lr = lr * lr_scale` each, plus one group (scale 1) for the parameters none names.
    ValueError on a malformed group."""
    groups = method.param_groups()
    if groups is None:
        return method.parameters()
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, group in enumerate(groups):
        if not isinstance(group, Mapping) or "params" not in group:
            raise ValueError(f"param_groups()[{i}] must be a dict holding 'params'")
        if "lr" in group:
            raise ValueError(f"param_groups()[{i}] sets 'lr'; give 'lr_scale', a multiplier "
                             "of train.lr, instead")
        scale = group.get("lr_scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale < 0:
            raise ValueError(f"param_groups()[{i}]['lr_scale'] must be a number >= 0; "
                             f"got {scale!r}")
        params = _group_params(group["params"])
        for p in params:
            if id(p) in seen:
                raise ValueError(f"param_groups()[{i}] repeats a parameter of an earlier "
                                 "group")
            seen.add(id(p))
        rest = {k: v for k, v in group.items() if k not in ("params", "lr_scale")}
        out.append({**rest, "params": params, "lr": lr * float(scale)})
    leftover = [p for p in method.parameters() if id(p) not in seen]
    if leftover:
        out.append({"params": leftover, "lr": lr})
    return [g for g in out if g["params"]]


methods: Registry[type[Method]] = Registry(
    "method", ["rambench.methods.raml", "baselines"]
)


def params_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
