"""`thanosql`: run ThanoSQL scripts and queries from a terminal, and open the Dagster UI.

    thanosql run script.sql          # every statement, in order; stops at the first error
    thanosql query "SELECT ..."      # one statement
    thanosql ui                      # Dagster UI on this workspace's assets (dagster dev)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from sql_frontend.interfaces.boundary import interrupted_statement, user_errors
from thanosql.errors import ThanoSQLError


def _echo(result, conn) -> None:
    from sql_frontend.interfaces.display import NO_IMAGES, contact_sheet, format_table, printed_images

    if result is None:
        print("Success")
        return
    images = printed_images(result)
    if images == []:
        print(NO_IMAGES)
        return
    if images:
        for path, caption in images:
            print(f"{path}    {caption}")
        local = getattr(conn, "settings", None)
        sheet, unshown = contact_sheet(images, local.home / "outputs" if local else Path("thanosql-outputs"))
        for path, why in unshown:
            print(f"cannot show {path}: {why}")
        print(f"picture: {sheet}")
        return
    print(format_table(result))


def _statement_title(text: str, width: int = 90) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _run(args) -> int:
    from sql_frontend.interfaces.api import connect
    from sql_frontend.language.parser import parse_script

    sql = _read_script(args.script)
    conn = connect(args.home, url=args.url, api_token=args.api_token)
    with user_errors(sql):
        statements = parse_script(sql)
    for number, statement in enumerate(statements, start=1):
        print(f"\n[{number}/{len(statements)}] {_statement_title(statement.text)}", flush=True)
        _echo(conn.execute_statement(statement), conn)
    return 0


def _read_script(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    path = Path(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ThanoSQLError(f"Script {name!r} does not exist.", hint="Give the path of a .sql file, or - to read the script from stdin.") from None
    except IsADirectoryError:
        raise ThanoSQLError(f"Script {name!r} is a directory.", hint="Give the path of a .sql file inside it.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ThanoSQLError(f"Cannot read script {name!r}: {error}.", hint="Give a readable UTF-8 text file.") from None


def _query(args) -> int:
    from sql_frontend.interfaces.api import connect

    if not args.sql.strip():
        raise ThanoSQLError("thanosql query got no statement.", hint='Quote the SQL: thanosql query "SELECT * FROM mnist_train LIMIT 5"')
    from sql_frontend.language.parser import parse_script

    conn = connect(args.home, url=args.url, api_token=args.api_token)
    with user_errors(args.sql):
        statements = parse_script(args.sql)
    for statement in statements:  # each result as it comes: a later statement's error keeps the earlier ones shown
        _echo(conn.execute_statement(statement), conn)
    return 0


def _ui(args) -> int:
    from resources import Settings

    settings = Settings.from_env(args.home)
    settings.ensure_dirs()
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    env = {**os.environ, "THANOSQL_HOME": str(settings.home), "DAGSTER_HOME": str(settings.dagster_home)}
    command = [dagster, "dev", "-m", "thanosql_assets.definitions", "-p", str(args.port), "-h", args.host]
    print(f"Dagster UI for workspace {settings.home} on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    return subprocess.call(command, env=env)


def _serve(args) -> int:
    from sql_frontend.interfaces.server import serve

    if args.home:
        os.environ["THANOSQL_HOME"] = args.home
    serve(host=args.host, port=args.port)
    return 0


def _token(args) -> int:
    from resources import Settings, build_resources
    from resources.api_tokens import TokenStore

    settings = Settings.from_env(args.home)
    settings.ensure_dirs()  # tokens may come before the workspace's first statement
    store = TokenStore(build_resources(settings)["catalog"].url)
    if args.action == "create":
        replaced = args.name in store.names()
        print(store.create(args.name))
        print(f"(API token for {args.name!r}: shown once, stored only as its SHA-256 digest)", file=sys.stderr)
        if replaced:
            print(f"(it replaces {args.name!r}'s previous token, which no longer works)", file=sys.stderr)
    elif args.action == "revoke":
        if not store.revoke(args.name):
            print(f"error: no token named {args.name!r}", file=sys.stderr)
            return 1
    else:
        print("\n".join(store.names()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thanosql", description="ThanoSQL image search and classification on Dagster assets.")
    parser.add_argument("--home", help="workspace directory (default: $THANOSQL_HOME or ./thanosql-workspace)")
    parser.add_argument("--url", help="a ThanoSQL SQL server to run statements on (default: $THANOSQL_URL; none: embedded)")
    parser.add_argument("--api-token", help="the SQL server's API token (default: $THANOSQL_API_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the statements of a script file ('-' reads stdin)")
    run.add_argument("script")
    run.set_defaults(handler=_run)
    query = commands.add_parser("query", help="run statements given on the command line")
    query.add_argument("sql")
    query.set_defaults(handler=_query)
    ui = commands.add_parser("ui", help="open the Dagster UI on this workspace (dagster dev)")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--host", default="127.0.0.1")
    ui.set_defaults(handler=_ui)
    serve = commands.add_parser("serve", help="run the SQL server on this workspace (production mode)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.set_defaults(handler=_serve)
    token = commands.add_parser("token", help="issue, revoke or list the SQL server's API tokens")
    token.add_argument("action", choices=("create", "revoke", "list"))
    token.add_argument("name", nargs="?", default="default")
    token.set_defaults(handler=_token)
    args = parser.parse_args(argv)
    if args.home and args.url and args.command in ("run", "query"):
        print(f"note: --home is not used with --url: statements run on the server's workspace ({args.url})", file=sys.stderr)
    try:
        with user_errors():
            return args.handler(args)
    except ThanoSQLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command in ("run", "query"):
            server = args.url or (os.environ.get("THANOSQL_URL") if args.home is None else None)  # as connect() picks
            print(f"interrupted: {interrupted_statement(server)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
