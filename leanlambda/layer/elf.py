"""Read the parts of an ELF shared object that the dynamic loader uses: program headers, the bytes of the
loaded segments, and the dynamic section's DT_NEEDED and DT_SONAME names.

A few dozen lines of `struct` do what the layer needs, for both ELF classes and byte orders and for
foreign architectures (an arm64 layer is read on an x86_64 machine): pyelftools would do the same through a
larger, general API, and gains nothing here.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PT_DYNAMIC = 2
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_SONAME = 14
# (e_phoff format, e_phoff offset, e_phentsize offset) per ELF class, and the program header layout.
_ELF_HEADER = {1: ("I", 28, 42), 2: ("Q", 32, 54)}
_PHDR = {1: "IIIIIIII", 2: "IIQQQQQQ"}
_DYN = {1: "iI", 2: "qQ"}
# ELF header bytes that only locate the section headers (e_shoff; e_shentsize, e_shnum, e_shstrndx):
# strip rewrites them, the loader never reads them.
_SECTION_HEADER_FIELDS = {1: ((0x20, 0x24), (0x2E, 0x34)), 2: ((0x28, 0x30), (0x3A, 0x40))}
ELF_HEADER_BYTES = 64


@dataclass(frozen=True)
class ProgramHeader:
    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int
    flags: int


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def _order(data: bytes) -> str:
    return "<" if data[5] == 1 else ">"


def program_headers(data: bytes) -> tuple[int, list[ProgramHeader]] | None:
    """(ELF class, every program header), or None if data is not a readable ELF file."""
    if len(data) < ELF_HEADER_BYTES or data[:4] != ELF_MAGIC or data[4] not in _ELF_HEADER:
        return None
    if data[5] not in (1, 2):
        return None
    elf_class, order = data[4], _order(data)
    offset_format, offset_at, entsize_at = _ELF_HEADER[elf_class]
    (phoff,) = struct.unpack_from(order + offset_format, data, offset_at)
    phentsize, phnum = struct.unpack_from(order + "HH", data, entsize_at)
    layout = order + _PHDR[elf_class]
    headers = []
    for index in range(phnum):
        start = phoff + index * phentsize
        if start + struct.calcsize(layout) > len(data):
            return None
        fields = struct.unpack_from(layout, data, start)
        if elf_class == 2:
            p_type, flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_align = fields
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, flags, p_align = fields
        headers.append(ProgramHeader(p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_align, flags))
    return elf_class, headers


def load_segments(path: Path) -> list[tuple[int, ...]] | None:
    """(offset, vaddr, filesz, memsz, align) of each PT_LOAD segment, or None if not a readable ELF."""
    parsed = program_headers(path.read_bytes())
    if parsed is None:
        return None
    return [(h.offset, h.vaddr, h.filesz, h.memsz, h.align) for h in parsed[1] if h.type == PT_LOAD]


def loaded_image(path: Path) -> tuple[tuple[tuple[int, ...], ...], str] | None:
    """What the dynamic loader reads of a shared library: its program headers and a digest of the bytes of
    every PT_LOAD segment (section-header fields of the ELF header masked). None if not a readable ELF."""
    data = path.read_bytes()
    parsed = program_headers(data)
    if parsed is None:
        return None
    elf_class, headers = parsed
    masked = bytearray(data[:ELF_HEADER_BYTES])
    for start, end in _SECTION_HEADER_FIELDS[elf_class]:
        masked[start:end] = bytes(end - start)
    digest = hashlib.sha256()
    for header in headers:
        if header.type != PT_LOAD:
            continue
        if header.offset + header.filesz > len(data):
            return None
        segment = bytearray(data[header.offset : header.offset + header.filesz])
        if header.offset < len(masked):  # the segment holds the ELF header (the first one usually does)
            overlap = min(len(masked) - header.offset, len(segment))
            segment[:overlap] = masked[header.offset : header.offset + overlap]
        digest.update(segment)
    as_tuples = tuple((h.type, h.offset, h.vaddr, h.filesz, h.memsz, h.align, h.flags) for h in headers)
    return as_tuples, digest.hexdigest()


@dataclass(frozen=True)
class DynamicNames:
    needed: tuple[str, ...]  # DT_NEEDED: the libraries the loader must find for this one
    soname: str | None  # DT_SONAME: the name others need this one by


def dynamic_names(path: Path) -> DynamicNames | None:
    """DT_NEEDED and DT_SONAME of a shared object (any architecture), or None if not a readable ELF."""
    data = path.read_bytes()
    parsed = program_headers(data)
    if parsed is None:
        return None
    elf_class, headers = parsed
    dynamic = [h for h in headers if h.type == PT_DYNAMIC]
    if not dynamic:
        return DynamicNames((), None)  # statically linked
    layout = _order(data) + _DYN[elf_class]
    size = struct.calcsize(layout)
    entries = []
    start, end = dynamic[0].offset, min(dynamic[0].offset + dynamic[0].filesz, len(data))
    while start + size <= end:
        tag, value = struct.unpack_from(layout, data, start)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
        start += size
    strtab = next((value for tag, value in entries if tag == DT_STRTAB), None)
    table_offset = _file_offset(headers, strtab) if strtab is not None else None
    if table_offset is None:
        return None

    def string(at: int) -> str:
        stop = data.find(b"\0", table_offset + at)
        return data[table_offset + at : stop if stop >= 0 else len(data)].decode("utf-8", "replace")

    needed = tuple(string(value) for tag, value in entries if tag == DT_NEEDED)
    soname = next((string(value) for tag, value in entries if tag == DT_SONAME), None)
    return DynamicNames(needed, soname)


def _file_offset(headers: list[ProgramHeader], vaddr: int) -> int | None:
    """The file offset of a virtual address inside a loaded segment."""
    for header in headers:
        if header.type == PT_LOAD and header.vaddr <= vaddr < header.vaddr + header.filesz:
            return vaddr - header.vaddr + header.offset
    return None
