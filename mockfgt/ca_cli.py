"""``mockfgt ca``: where the harness CA is, how to trust it, and renewing it (never done by a start).

    mockfgt ca [--certs-dir certs]                  # print the CA certificate's path (made if absent)
    mockfgt ca --install-hint                       # how to make curl, requests, Node, Java, an OS trust it
    mockfgt ca --renew                              # a new CA; material minted from the old one is removed
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .castore import CAError
from .tls import HarnessCA


def add_parser(sub) -> None:
    ca = sub.add_parser("ca", help="print the harness CA's path, how to trust it, or renew it")
    ca.add_argument("--certs-dir", default="certs", help="the certs folder, as given to serve (default certs)")
    action = ca.add_mutually_exclusive_group()
    action.add_argument("--install-hint", action="store_true", help="print how to trust the CA in common clients")
    action.add_argument("--renew", action="store_true",
                        help="make a new CA and remove the certificates minted from the old one")
    ca.set_defaults(run=cmd_ca)


def cmd_ca(args) -> int:
    try:
        if args.renew:
            ca, removed = HarnessCA.renew(Path(args.certs_dir))
            print(renew_report(ca, removed))
            return 0
        ca = HarnessCA(Path(args.certs_dir))
    except CAError as exc:
        print(f"mockfgt: {exc}", file=sys.stderr)
        return 2
    print(install_hint(ca) if args.install_hint else ca.cert_path)
    return 0


def renew_report(ca: HarnessCA, removed: list[Path]) -> str:
    lines = [f"mockfgt: made a new harness CA {ca.cert_path} (valid until {ca.not_after:%Y-%m-%d})"]
    if removed:
        names = ", ".join(str(p.relative_to(ca.certs_dir)) + ("/" if p.suffix == "" else "") for p in removed)
        lines.append(f"mockfgt: removed the old CAs and what they made: {names}")
    lines.append("mockfgt: runs still serving keep the old CA until restarted; clients that copied the old "
                 "certificate must take the new one")
    return "\n".join(lines)


def install_hint(ca: HarnessCA) -> str:
    pem, key, py = shlex.quote(str(ca.cert_path)), shlex.quote(str(ca.key_path)), repr(str(ca.cert_path))
    return f"""The harness CA: {ca.cert_path}  (valid until {ca.not_after:%Y-%m-%d})

Best: trust it in the client under test only.
  curl              curl --cacert {pem} https://127.0.0.1:8443/...
  Python requests   requests.get(url, verify={py})   or   export REQUESTS_CA_BUNDLE={pem}
  Python ssl/httpx  ssl.create_default_context(cafile={py})
  Node.js           export NODE_EXTRA_CA_CERTS={pem}
  Java              keytool -importcert -noprompt -alias mockfgt-harness-ca -file {pem} \\
                      -keystore mockfgt-truststore.p12 -storetype PKCS12 -storepass changeit
                    java -Djavax.net.ssl.trustStore=mockfgt-truststore.p12 -Djavax.net.ssl.trustStorePassword=changeit ...

System-wide (only on a throwaway machine or container):
  Debian/Ubuntu     sudo cp {pem} /usr/local/share/ca-certificates/mockfgt-harness-ca.crt && sudo update-ca-certificates
                    undo: sudo rm /usr/local/share/ca-certificates/mockfgt-harness-ca.crt && sudo update-ca-certificates --fresh
  macOS             sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}
                    undo: sudo security remove-trusted-cert -d {pem}

Warning: this is a test CA. Its private key lies unencrypted on disk ({key}):
anyone who can read that file can mint certificates for any site, and whatever trusts this CA accepts
them. Never trust it system-wide on a machine you care about. `mockfgt ca --renew` replaces it."""
