"""Studio accounts: who may log in when the studio serves the LAN.

Passwords are stored only as salted scrypt hashes in a users file
($STUDIO_HOME/users or STUDIO_USERS_FILE), one `name:hash` a line, written by
the small CLI below. STUDIO_AUTH (plain `user:password` pairs, handy for a
quick start) is hashed in memory at start-up. Every problem is one line.

    python -m studio.users add ann          # asks for the password twice
    python -m studio.users remove ann
    python -m studio.users list
"""
from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import unicodedata
from pathlib import Path

MIN_PASSWORD = 10          # characters; shorter passwords fall to a LAN brute force in hours
MAX_USERNAME = 64
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1   # about 16 MiB and 50 ms per check
PREFIX = "scrypt"


class UsersError(ValueError):
    """A bad account or users file; the message is one line a person can act on."""


def check_username(name: str) -> str:
    if not name or len(name) > MAX_USERNAME:
        raise UsersError(f"user name must be 1-{MAX_USERNAME} characters")
    if ":" in name or "," in name or any(c.isspace() or unicodedata.category(c).startswith("C") for c in name):
        raise UsersError(f"user name {name!r}: no spaces, commas, colons or control characters")
    return name


def check_password(user: str, password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsersError(f"password of {user!r} is {len(password)} characters; use at least {MIN_PASSWORD}")
    return password


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32)


def hash_password(password: str) -> str:
    """A salted scrypt hash: `scrypt$n$r$p$salt$key` (base64)."""
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"{PREFIX}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise UsersError("not a scrypt hash")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise UsersError("not a scrypt hash") from None
    if n < 2 ** 10 or n > 2 ** 20 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or len(key) != 32:
        raise UsersError("scrypt parameters out of range")
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    n, r, p, salt, key = _parse_hash(stored)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


def read_users_file(path: Path) -> list[tuple[str, str]]:
    """(name, hash) pairs from a users file; a plain password, bad line or duplicate is an error."""
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        where = f"users file line {number}"
        if not sep:
            raise UsersError(f"{where}: expected name:hash (add users with: python -m studio.users add NAME)")
        try:
            check_username(name)
            _parse_hash(stored)
        except UsersError as e:
            hint = " (passwords are stored hashed: python -m studio.users add NAME)" if "hash" in str(e) else ""
            raise UsersError(f"{where}: {e}{hint}") from None
        pairs.append((name, stored))
    return pairs


def combine(from_file: list[tuple[str, str]], from_env: str | None) -> tuple[tuple[str, str], ...]:
    """All accounts as (name, hash); STUDIO_AUTH passwords are checked and hashed here. Duplicates refused."""
    pairs = list(from_file)
    for item in str(from_env or "").split(","):
        if not item.strip():
            continue
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise UsersError("STUDIO_AUTH: expected user:password, several separated by commas")
        check_username(user)
        pairs.append((user, hash_password(check_password(user, password))))
    seen: set[str] = set()
    for user, _ in pairs:
        if user.casefold() in seen:
            raise UsersError(f"user {user!r} is listed twice (users file and STUDIO_AUTH together); keep one")
        seen.add(user.casefold())
    return tuple(pairs)


_DUMMY = hash_password(secrets.token_hex(8))


def authenticator(accounts: tuple[tuple[str, str], ...]):
    """Gradio's `auth` callable: constant work whether or not the user exists, off the event loop."""
    import asyncio

    table = dict(accounts)

    async def check(username: str, password: str) -> bool:
        stored = table.get(username)
        ok = await asyncio.to_thread(verify_password, password, stored or _DUMMY)
        return ok and stored is not None

    return check


def _write(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Replace the users file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# studio users: name:scrypt hash (python -m studio.users add NAME)\n")
        f.writelines(f"{name}:{stored}\n" for name, stored in pairs)
    os.replace(partial, path)


def add_user(path: Path, name: str, password: str) -> None:
    path = Path(path)
    pairs = read_users_file(path) if path.exists() else []
    check_username(name)
    if name.casefold() in {n.casefold() for n, _ in pairs}:
        raise UsersError(f"user {name!r} already exists; remove it first to change the password")
    _write(path, pairs + [(name, hash_password(check_password(name, password)))])


def remove_user(path: Path, name: str) -> None:
    pairs = read_users_file(path) if Path(path).exists() else []
    kept = [(n, h) for n, h in pairs if n != name]
    if len(kept) == len(pairs):
        raise UsersError(f"no user named {name!r}")
    _write(Path(path), kept)


def default_users_file() -> Path:
    from .settings import load_settings

    return load_settings().users_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.users", description="Manage studio logins")
    parser.add_argument("--file", type=Path, help="users file (default: STUDIO_USERS_FILE or $STUDIO_HOME/users)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    sub.add_parser("remove", help="remove a user").add_argument("name")
    sub.add_parser("list", help="list user names")
    args = parser.parse_args(argv)
    try:
        path = args.file or default_users_file()
        if args.command == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass(f"password for {args.name}: ")
                if getpass.getpass("again: ") != password:
                    raise UsersError("the two passwords differ")
            add_user(path, args.name, password)
            print(f"added {args.name} to {path}")
        elif args.command == "remove":
            remove_user(path, args.name)
            print(f"removed {args.name} from {path}")
        else:
            for name, _ in read_users_file(path) if path.exists() else []:
                print(name)
    except (UsersError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
