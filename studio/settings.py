"""Studio settings: configs/studio.yaml overridden by environment variables.

Every setting is validated once at start-up so a typo in an env var stops the
studio with one clear line instead of a traceback in the middle of a take.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "studio.yaml"
QUANTIZE_CHOICES = ("none", "int8")
ASR_CHOICES = ("auto", "pocketsphinx", "whisper")  # studio.engines.asr reads the same names
SE_CHOICES = ("auto", "resemblyzer", "ecapa", "qwen-base")  # speaker encoders (studio/engines/speaker.py)


class SettingsError(ValueError):
    """An invalid setting; the message is one line a person can act on."""


@dataclass(frozen=True)
class Settings:
    home: Path
    tts_device: str
    vc_device: str
    se_device: str
    se_model: str
    tts_quantize: str
    default_diff_steps: int
    emb_cache_size: int
    host: str
    port: int
    auth: tuple[tuple[str, str], ...]   # (user, scrypt hash) from the users file and STUDIO_AUTH
    users_file: Path
    max_file_size: str
    ssl_certfile: str | None
    ssl_keyfile: str | None
    trash_days: int
    cache_hours: int
    asr_model: str = "auto"
    gpu_queue: int = 16   # GPU jobs that may wait; past that a client is told to retry (studio/ui/lane.py)
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For names the client (studio/webguard.py)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


# env var -> dotted key in studio.yaml
ENV_KEYS = {
    "STUDIO_HOME": "home",
    "TTS_DEVICE": "devices.tts",
    "VC_DEVICE": "devices.vc",
    "SE_DEVICE": "devices.se",
    "SE_MODEL": "speaker.model",
    "TTS_QUANTIZE": "tts.quantize",
    "DEFAULT_DIFF_STEPS": "vc.default_diff_steps",
    "EMB_CACHE_SIZE": "vc.emb_cache_size",
    "STUDIO_HOST": "server.host",
    "STUDIO_PORT": "server.port",
    "STUDIO_AUTH": "server.auth",
    "STUDIO_USERS_FILE": "server.users_file",
    "STUDIO_MAX_FILE_SIZE": "server.max_file_size",
    "STUDIO_SSL_CERTFILE": "server.ssl_certfile",
    "STUDIO_SSL_KEYFILE": "server.ssl_keyfile",
    "STUDIO_TRASH_DAYS": "library.trash_days",
    "STUDIO_CACHE_HOURS": "server.cache_hours",
    "ASR_MODEL": "asr.model",
    "STUDIO_GPU_QUEUE": "server.gpu_queue",
    "STUDIO_TRUSTED_PROXIES": "server.trusted_proxies",
}


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(name: str, value: str) -> str:
    """Return a torch device string, or raise if it cannot exist on this machine."""
    value = value.strip().lower()
    if value == "auto":
        return "cuda:0" if _cuda_count() > 0 else "cpu"
    if value == "cpu":
        return "cpu"
    if value == "cuda":
        value = "cuda:0"
    if value.startswith("cuda:") and value[5:].isdigit():
        count = _cuda_count()
        if int(value[5:]) >= count:
            found = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise SettingsError(f"{name}={value}: this machine has {found}; use cpu or cuda:N with N < {max(count, 1)}")
        return value
    raise SettingsError(f"{name}={value!r}: expected cpu, cuda, cuda:N or auto")


def _int(name: str, value, lo: int, hi: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise SettingsError(f"{name}={value!r}: expected a whole number from {lo} to {hi}") from None
    if not lo <= number <= hi:
        raise SettingsError(f"{name}={number}: expected a whole number from {lo} to {hi}")
    return number


def _networks(name: str, value) -> tuple[str, ...]:
    """Comma-separated addresses or CIDRs (e.g. 127.0.0.1,10.0.0.0/8) as normalised network strings."""
    import ipaddress

    nets = []
    for item in filter(None, (x.strip() for x in str(value or "").split(","))):
        try:
            nets.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an address or network (e.g. 10.0.0.2 or "
                                "10.0.0.0/24)") from None
    return tuple(nets)


def _accounts(users_file: Path, explicit: bool, env_auth) -> tuple[tuple[str, str], ...]:
    """Users from the users file (hashed) and STUDIO_AUTH; any problem is one line."""
    from .users import UsersError, combine, read_users_file

    if explicit and not users_file.is_file():
        raise SettingsError(f"STUDIO_USERS_FILE={users_file}: no such file "
                            "(create it: python -m studio.users add NAME)")
    try:
        return combine(read_users_file(users_file) if users_file.is_file() else [], env_auth)
    except UsersError as e:
        raise SettingsError(str(e)) from None


def is_loopback(host: str) -> bool:
    """True when only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    host = str(host).strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, auth) -> None:
    """Refuse to serve a non-loopback address without logins: anyone on the LAN could delete the cast."""
    if not is_loopback(host) and not auth:
        raise SettingsError(f"serving on {host} needs logins: add one with `python -m studio.users add NAME` "
                            "(or set STUDIO_AUTH=user:password), or serve on 127.0.0.1")


def load_settings(config_path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the YAML, apply env overrides, validate, return frozen Settings."""
    env = os.environ if env is None else env
    cfg = OmegaConf.load(config_path or DEFAULT_CONFIG)
    for var, key in ENV_KEYS.items():
        if env.get(var, "") != "":
            OmegaConf.update(cfg, key, env[var])

    tts = check_device("TTS_DEVICE", str(cfg.devices.tts))
    vc = check_device("VC_DEVICE", str(cfg.devices.vc)) if cfg.devices.vc else tts
    se = check_device("SE_DEVICE", str(cfg.devices.se)) if cfg.devices.se else tts

    quantize = str(cfg.tts.quantize).strip().lower()
    if quantize not in QUANTIZE_CHOICES:
        raise SettingsError(f"TTS_QUANTIZE={cfg.tts.quantize!r}: expected one of {', '.join(QUANTIZE_CHOICES)}")
    if quantize == "int8" and tts == "cpu":
        raise SettingsError("TTS_QUANTIZE=int8 needs a CUDA TTS_DEVICE (int8 on CPU is 20-50x slower); use none on cpu")

    asr = str(OmegaConf.select(cfg, "asr.model", default="auto")).strip().lower()
    if asr not in ASR_CHOICES:
        raise SettingsError(f"ASR_MODEL={asr!r}: expected one of {', '.join(ASR_CHOICES)}")

    home = Path(str(cfg.home)).expanduser()
    if not home.is_absolute():
        home = (Path.cwd() / home).resolve()

    certfile, keyfile = cfg.server.ssl_certfile, cfg.server.ssl_keyfile
    if bool(certfile) != bool(keyfile):
        raise SettingsError("STUDIO_SSL_CERTFILE and STUDIO_SSL_KEYFILE must be set together")
    for var, value in (("STUDIO_SSL_CERTFILE", certfile), ("STUDIO_SSL_KEYFILE", keyfile)):
        if value and not Path(str(value)).expanduser().is_file():
            raise SettingsError(f"{var}={value}: no such file (see README, 'Running for a team on a LAN')")

    users_file = Path(str(OmegaConf.select(cfg, "server.users_file") or home / "users")).expanduser()

    se_model = str(cfg.speaker.model).strip().lower()
    if se_model not in SE_CHOICES:
        raise SettingsError(f"SE_MODEL={cfg.speaker.model!r}: expected one of {', '.join(SE_CHOICES)}")

    return Settings(
        home=home,
        tts_device=tts,
        vc_device=vc,
        se_device=se,
        se_model=se_model,
        tts_quantize=quantize,
        default_diff_steps=_int("DEFAULT_DIFF_STEPS", cfg.vc.default_diff_steps, 1, 200),
        emb_cache_size=_int("EMB_CACHE_SIZE", cfg.vc.emb_cache_size, 0, 4096),
        host=str(cfg.server.host),
        port=_int("STUDIO_PORT", cfg.server.port, 1, 65535),
        auth=_accounts(users_file, bool(OmegaConf.select(cfg, "server.users_file")), cfg.server.auth),
        users_file=users_file,
        max_file_size=str(cfg.server.max_file_size),
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        trash_days=_int("STUDIO_TRASH_DAYS", OmegaConf.select(cfg, "library.trash_days", default=14), 0, 3650),
        cache_hours=_int("STUDIO_CACHE_HOURS", OmegaConf.select(cfg, "server.cache_hours", default=24), 1, 24 * 365),
        asr_model=asr,
        gpu_queue=_int("STUDIO_GPU_QUEUE", OmegaConf.select(cfg, "server.gpu_queue", default=16), 1, 1000),
        trusted_proxies=_networks("STUDIO_TRUSTED_PROXIES", OmegaConf.select(cfg, "server.trusted_proxies")),
    )
