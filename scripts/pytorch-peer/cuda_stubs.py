"""Stand-in libraries for the CUDA runtime that PyPI's Linux torch wheel links.

The wheel's .so files list libcudart, libcublas, libcudnn, ... as NEEDED even for CPU
work, and the CUDA wheels that provide them are gigabytes. For each NEEDED library that
the loader cannot find, this writes a small shared library with that soname, the version
nodes torch's files ask of it, and every symbol they import from it as a function that
returns 100 (CUDA's "no device" error code). Nothing CPU-side calls them: they only let the
loader resolve the names. Put the output folder on LD_LIBRARY_PATH for the benchmark only.

usage: python3 cuda_stubs.py TORCH_LIB_DIR OUT_DIR
"""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# Prefixes of the CUDA libraries' C symbols; an import with no version tag and one of these
# prefixes goes into every stand-in that has no version nodes (the driver, cuFile, NCCL,
# cuSPARSELt), since the tag is what would say which library defines it.
CUDA_PREFIXES = ("cu", "nccl", "nvshmem", "__cuda", "cudnn", "nvrtc", "cufile", "cupti")


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main(torch_lib: Path, out: Path):
    libs = sorted(p for p in torch_lib.glob("*.so*") if p.is_file())
    missing = set()
    for lib in libs:
        for line in run("ldd", str(lib)).splitlines():
            m = re.match(r"\s*(\S+) => not found", line)
            if m:
                missing.add(m.group(1))
    if not missing:
        print("cuda_stubs: every NEEDED library resolves; no stand-ins written")
        return
    # Which soname defines each version tag torch's files ask for.
    owner = {}
    for lib in libs:
        current = None
        for line in run("readelf", "-V", "--wide", str(lib)).splitlines():
            m = re.search(r"File: (\S+)", line)
            if m:
                current = m.group(1)
                continue
            m = re.search(r"Name: (\S+)", line)
            if m and current in missing:
                owner[m.group(1)] = current
    versioned = defaultdict(lambda: defaultdict(set))  # soname -> version -> symbols
    untagged = set()
    for lib in libs:
        for line in run("nm", "-D", "--undefined-only", str(lib)).splitlines():
            name = line.split()[-1]
            symbol, _, version = name.partition("@")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", symbol):
                continue
            if version in owner:
                versioned[owner[version]][version].add(symbol)
            elif not version and symbol.startswith(CUDA_PREFIXES):
                untagged.add(symbol)
    out.mkdir(parents=True, exist_ok=True)
    for soname in sorted(missing):
        nodes = versioned.get(soname, {})
        symbols = set().union(*nodes.values()) if nodes else set(untagged)
        c = out / f"{soname}.c"
        c.write_text(
            "/* A stand-in: see cuda_stubs.py. */\n"
            + "".join(f"long {s}(void) {{ return 100; }}\n" for s in sorted(symbols))
        )
        cmd = ["gcc", "-shared", "-fPIC", "-O0", "-o", str(out / soname), str(c),
               f"-Wl,-soname,{soname}"]
        if nodes:
            script = out / f"{soname}.map"
            script.write_text("".join(
                f"{v} {{ global: {' '.join(s + ';' for s in sorted(syms))} }};\n"
                for v, syms in sorted(nodes.items())
            ))
            cmd.append(f"-Wl,--version-script={script}")
        subprocess.run(cmd, check=True)
        c.unlink()
        print(f"cuda_stubs: {soname}: {len(symbols)} symbols")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
