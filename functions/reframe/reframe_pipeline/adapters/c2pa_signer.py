"""C2PA Content Credentials in each generated variant (C2PA_SIGNING=on; docs/provenance.md), with c2pa-python:
the image sent to the provider as the parentOf ingredient, the edit intent's ``c2pa.opened`` action on it, then
``c2pa.edited`` with the IPTC digital source type the variant's XMP states.

c2pa (a 23 MB native library) and cryptography are imported inside the methods, and composition imports this
module only when signing is on: a cold start without signing loads neither."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from reframe_pipeline.application.values import ParentImage
from reframe_pipeline.domain.imaging import FORMATS, sniff
from reframe_pipeline.domain.provenance import TOOL, Provenance
from reframe_pipeline.observability import count, logger

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)
# c2pa-rs adds a thumbnail of the variant and of the source by default: about 180 KB and 200-500 ms per variant,
# for a picture of an image that is itself the file.
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


class SignerBundleError(ValueError):
    """The PEM text does not hold one private key and a certificate chain (its content is never quoted)."""


class C2paSigner:
    def __init__(self, bundle: Callable[[], str]) -> None:
        # The PEM text: the private key and the certificate chain, leaf first. A callable: the secret is read
        # when needed (and cached by its source), so a rotated key is picked up without a redeploy.
        self._bundle = bundle

    def sign(self, body: bytes, mime: str, parent: ParentImage, provenance: Provenance) -> bytes | None:
        try:
            return self._sign(body, mime, parent, provenance)
        except Exception as exc:  # the secret, the PEM, the source, the native library: none may cost the paid variant
            logger.error("variant not signed", extra={"error": f"{type(exc).__name__}: {exc}"})
            count("SigningFailures")
            return None

    def _sign(self, body: bytes, mime: str, parent: ParentImage, provenance: Provenance) -> bytes:
        import c2pa

        algorithm, chain, key = _credentials(self._bundle())
        definition = {"claim_generator_info": [{"name": TOOL}]}
        with (
            c2pa.Signer.from_info(c2pa.C2paSignerInfo(algorithm, chain, key, None)) as signer,
            c2pa.Builder(definition, context=_context()) as builder,
        ):
            # The edit intent adds c2pa.opened, which must name the parent ingredient.
            builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            source = parent.load()
            builder.add_ingredient(
                {"title": parent.title, "relationship": "parentOf"},
                FORMATS[sniff(source[:32]) or "png"].mime,
                io.BytesIO(source),
            )
            builder.add_action(
                {
                    "action": "c2pa.edited",
                    "digitalSourceType": provenance.digital_source_type,
                    "softwareAgent": {"name": provenance.model or TOOL},
                }
            )
            signed = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(body), signed)
        return signed.getvalue()


@lru_cache(maxsize=1)
def _context() -> Any:
    import c2pa

    return c2pa.Context(c2pa.Settings.from_dict(_SETTINGS))


@lru_cache(maxsize=2)
def _credentials(bundle: str) -> tuple[Any, bytes, bytes]:
    """(signing algorithm, certificate chain PEM, private key PEM); the algorithm follows from the key."""
    import c2pa
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    blocks = [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(bundle)]
    keys = [block for kind, block in blocks if kind.endswith("PRIVATE KEY")]
    certificates = [block for kind, block in blocks if kind == "CERTIFICATE"]
    if len(keys) != 1 or not certificates:
        raise SignerBundleError(
            f"the signer PEM holds {len(keys)} private key(s) and {len(certificates)} certificate(s): "
            "it needs one private key and its certificate chain, leaf first"
        )
    key = load_pem_private_key(keys[0].encode(), password=None)
    algorithms = c2pa.C2paSigningAlg
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": algorithms.ES256, "secp384r1": algorithms.ES384, "secp521r1": algorithms.ES512}
        algorithm = by_curve.get(key.curve.name)
    elif isinstance(key, rsa.RSAPrivateKey):
        algorithm = algorithms.PS256
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = algorithms.ED25519
    else:
        algorithm = None
    if algorithm is None:
        raise SignerBundleError(f"a {type(key).__name__} cannot sign C2PA: use EC P-256/384/521, RSA or Ed25519")
    return algorithm, ("\n".join(certificates) + "\n").encode(), keys[0].encode()
