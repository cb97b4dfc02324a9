"""Start the studio:  python app.py [--host H] [--port P]

Host, port, auth and TLS also come from configs/studio.yaml and env vars
(STUDIO_HOST, STUDIO_PORT, STUDIO_AUTH, STUDIO_USERS_FILE, STUDIO_SSL_CERTFILE/KEYFILE).
Serving a non-loopback address needs logins: python -m studio.users add NAME.
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Voice Acting Studio")
    parser.add_argument("--host", help="address to serve on (0.0.0.0 for the LAN)")
    parser.add_argument("--port", type=int, help="port to serve on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from studio.registry import ModelsMissing
    from studio.settings import SettingsError, check_exposure, load_settings

    try:
        settings = load_settings()
        host = args.host or settings.host
        check_exposure(host, settings.auth)
        from studio.service import Studio

        studio = Studio(settings)
    except (SettingsError, ModelsMissing) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from studio.ui.app import build_app, launch

    demo = build_app(studio)
    launch(demo, studio, host, args.port or settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
