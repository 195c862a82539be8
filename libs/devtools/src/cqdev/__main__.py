"""``python -m cqdev``: the developer commands behind the Makefile.

Subcommands:

* ``run [--ready-file PATH]`` — the whole cluster (see :mod:`cqdev.cluster`), until Ctrl-C.
* ``test [pytest args...]`` — pytest over the whole suite with the repo's config; its exit
  code, where "no tests collected" (5) is reported as the failure it is.
* ``migrate`` — provision the stack and apply every service's migrations.
* ``generate [--vehicles N]`` — migrations, then N synthetic vehicles as a bulk snapshot
  (``python -m cqdev.datagen``; the sandbox roster is ``make run``'s job).
* ``stack`` — provision the stack, print its env vars, keep it up until Ctrl-C.
* ``bench`` — run every ``bench/*.py`` in turn, printing their output.
* ``fake-alipay [--port P] [--keys-dir DIR] [--env-file PATH]`` — the fake Alipay gateway
  (:mod:`cqdev.fake_alipay`) on a fixed port with the sandbox keys of ``DIR`` (made once,
  0600), until Ctrl-C; ``make run`` starts it in sandbox mode.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cqdev import cluster
from cqdev.stack import Stack, StackError, local_dir, project_root

PYTEST_NO_TESTS = 5


def _configure_logging() -> None:
    # Our own messages at INFO; libraries (kafka-python is chatty) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="cqdev: %(message)s")
    logging.getLogger("cqdev").setLevel(logging.INFO)


def _cmd_run(args: argparse.Namespace) -> int:
    # The launcher prints its own stack summary on stdout; keep stderr for warnings.
    logging.getLogger("cqdev.stack").setLevel(logging.WARNING)
    config = cluster.default_config(ready_file=args.ready_file)
    return cluster.run(config)


def _cmd_test(pytest_args: Sequence[str]) -> int:
    root = project_root()
    argv = [sys.executable, "-m", "pytest", *pytest_args]
    # Children inherit our signals: Ctrl-C reaches pytest, which stops and cleans up.
    code = subprocess.run(argv, cwd=root, check=False).returncode
    if code == PYTEST_NO_TESTS:
        print(
            "cqdev: ERROR: pytest collected no tests; that is a failure, not a pass",
            file=sys.stderr,
        )
    return code


def _with_stack(setup: list[tuple[str, tuple[str, ...]]]) -> int:
    """Provision the stack, run ``setup`` commands in order, stop what we started."""
    log_dir = local_dir() / "logs"
    try:
        with Stack() as stack:
            env = dict(os.environ)
            env.update(stack.env())
            for name, argv in setup:
                print(f"cqdev: {name} ...", flush=True)
                cluster.run_setup(name, argv, env, log_dir)
    except (StackError, cluster.ClusterError) as exc:
        print(f"cqdev: ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print("cqdev: done")
    return 0


def _cmd_migrate(_args: argparse.Namespace) -> int:
    return _with_stack(cluster.setup_commands(load_sandbox=False))


def _cmd_generate(args: argparse.Namespace) -> int:
    # the bulk generator needs no running service; the sandbox roster is `make run`'s job
    setup = cluster.setup_commands(load_sandbox=False)
    if args.vehicles:
        argv = (sys.executable, "-m", "cqdev.datagen", "--vehicles", str(args.vehicles))
        setup.append(("generate", argv))
    return _with_stack(setup)


def _cmd_stack(_args: argparse.Namespace) -> int:
    try:
        with Stack() as stack:
            for key, value in stack.env().items():
                print(f"export {key}={value}")
            print(
                "cqdev: stack is up; Ctrl-C stops what was started "
                f"({', '.join(stack.started()) or 'nothing'})",
                flush=True,
            )
            while True:
                time.sleep(3600)
    except StackError as exc:
        print(f"cqdev: ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _cmd_bench(_args: argparse.Namespace) -> int:
    scripts = sorted((project_root() / "bench").glob("*.py"))
    if not scripts:
        print("cqdev: no benchmarks under bench/ yet")
        return 0
    failed: list[str] = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        code = subprocess.run(
            [sys.executable, str(script)], cwd=project_root(), check=False
        ).returncode
        if code != 0:
            failed.append(f"{script.name} (exit {code})")
    if failed:
        print(f"cqdev: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_fake_alipay(args: argparse.Namespace) -> int:
    from cqdev import fake_alipay  # uvicorn and the keys only for this command

    return fake_alipay.serve(
        port=args.port,
        keys_dir=args.keys_dir or cluster.sandbox_keys_dir(),
        host=args.host,
        env_file=args.env_file,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cqdev",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the whole cluster until Ctrl-C")
    p_run.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write a JSON file with URLs and pids once the cluster is ready",
    )
    p_run.set_defaults(func=_cmd_run)
    sub.add_parser("test", help="run the whole test suite (extra args go to pytest)")
    sub.add_parser("migrate", help="apply every service's migrations").set_defaults(
        func=_cmd_migrate
    )
    p_gen = sub.add_parser("generate", help="migrations (+ a bulk snapshot of synthetic data)")
    p_gen.add_argument("--vehicles", type=int, default=None, help="synthetic vehicles to add")
    p_gen.set_defaults(func=_cmd_generate)
    sub.add_parser("stack", help="provision the stack and keep it up").set_defaults(func=_cmd_stack)
    sub.add_parser("bench", help="run bench/*.py").set_defaults(func=_cmd_bench)
    p_fake = sub.add_parser("fake-alipay", help="serve the fake Alipay gateway until Ctrl-C")
    p_fake.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("FAKE_ALIPAY_PORT") or cluster.FAKE_ALIPAY_DEFAULT_PORT),
        help="port to listen on (default FAKE_ALIPAY_PORT or %(default)s)",
    )
    p_fake.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p_fake.add_argument(
        "--keys-dir",
        type=Path,
        default=None,
        help="where the sandbox app and Alipay keys live (default .local/alipay)",
    )
    p_fake.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="write the ALIPAY_* settings (keys included) there as export lines, mode 0600",
    )
    p_fake.set_defaults(func=_cmd_fake_alipay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    # `test` forwards everything after it to pytest untouched (argparse would eat "-k" etc.).
    if args_list and args_list[0] == "test":
        return _cmd_test(args_list[1:])
    args = build_parser().parse_args(args_list)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
