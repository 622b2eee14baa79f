"""`monitord passwd`: the line a console user's `password` holds, from a password typed twice.

The password is read without echo from a terminal (or two lines of standard input, for
scripts) and never printed; only its scrypt hash is (monitord/console_auth.py).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from monitord.console_auth import MAX_PASSWORD, ROLES, hash_password

MIN_PASSWORD = 8


def add_parser(commands: Any) -> None:
    passwd = commands.add_parser("passwd", help="print the hash of a web console password, for console.users in the config")
    passwd.add_argument("--user", help="print a whole console.users entry for this user name")
    passwd.add_argument("--role", choices=ROLES, default="helpdesk", help="the entry's role (default: helpdesk)")


def run_passwd(args: argparse.Namespace, stdin: TextIO = sys.stdin) -> int:
    if stdin.isatty():
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
    else:
        first, second = stdin.readline().rstrip("\n"), stdin.readline().rstrip("\n")
    if first != second:
        print("monitord: the passwords do not match; nothing printed", file=sys.stderr)
        return 1
    if not MIN_PASSWORD <= len(first) <= MAX_PASSWORD:
        print(f"monitord: a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters, please", file=sys.stderr)
        return 1
    line = hash_password(first)
    print(f'- {{name: {args.user}, role: {args.role}, password: "{line}"}}' if args.user else line)
    return 0
