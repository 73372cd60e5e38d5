"""Downloads the sdist of one requirement for the running Python, without building it.

`pip download` prepares an sdist's metadata before it saves it, which for a backend without a
metadata hook (meson-python) means building the whole package natively just to download it.
This asks pip's own index code (its configuration, index, find-links, Requires-Python
filtering, hash checks) for the best sdist and saves that file as it is.

Usage: python pymode_fetch_sdist.py NAME VERSION|- DEST_DIR
Prints the saved file's path. Exit 3: no sdist matches.
"""

import hashlib
import os
import sys

from pip._internal.commands import create_command
from pip._vendor.packaging.specifiers import SpecifierSet


def main(name, version, dest):
    command = create_command("download")
    # The options `pip download --no-binary :all:` would have, so that only sdists count.
    options, _ = command.parse_args(["--no-binary", ":all:", "--no-deps", "-d", dest, name])
    with command.main_context():
        return fetch(command, options, name, version, dest)


def fetch(command, options, name, version, dest):
    session = command.get_default_session(options)
    finder = command._build_package_finder(options=options, session=session)
    specifier = SpecifierSet("" if version == "-" else f"=={version}")
    best = finder.find_best_candidate(name, specifier).best_candidate
    if best is None:
        wanted = name if version == "-" else f"{name}=={version}"
        print(f"no sdist of {wanted} for Python {sys.version.split()[0]}", file=sys.stderr)
        return 3
    link = best.link
    path = os.path.join(dest, link.filename)
    digest = hashlib.new(link.hash_name) if link.hash_name else None
    partial = path + ".part"
    with session.get(link.url, stream=True) as response:
        response.raise_for_status()
        with open(partial, "wb") as out:
            for chunk in response.iter_content(1 << 16):
                out.write(chunk)
                if digest:
                    digest.update(chunk)
    if digest and digest.hexdigest() != link.hash:
        os.remove(partial)
        print(f"{link.filename}: {link.hash_name} mismatch (index says {link.hash})", file=sys.stderr)
        return 4
    os.replace(partial, path)
    print(path)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
