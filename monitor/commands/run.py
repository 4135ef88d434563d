"""``banana-monitor run``: the daemon over a feed directory (or a Redis stream)."""

from __future__ import annotations

import click

from monitor.commands.common import CommandError, load_model


@click.command()
@click.option("--config", "config_path", metavar="FILE",
              help="TOML config (default: ./banana-monitor.toml if present).")
@click.option("--feed", metavar="DIR", help="Feed directory to watch [feed].")
@click.option("--model", metavar="PATH", help="Model file (default: shipped).")
@click.option("--state", metavar="DIR", help="State directory [<feed>/.state].")
@click.option("--learn/--no-learn", "learn", default=None, help="Learn from labelled posts.")
@click.option("--polling", is_flag=True, default=None,
              help="Poll the directory (NFS/CIFS/Docker mounts where inotify sees nothing).")
@click.option("--source", metavar="URL", help="redis://HOST:PORT/DB to read a Redis stream.")
# redis workers (issue 8): README "Scaling out with Redis"
@click.option("--role", type=click.Choice(["all", "scorer", "learner"]), default=None,
              help="Redis worker role [all]: scorer (skips labelled posts, follows the "
                   "published model) or learner (learns labelled posts, publishes versions).")
@click.option("--consumer", metavar="NAME",
              help="Redis consumer name [hostname-pid, kept in the state dir].")
@click.option("--settle", type=float, metavar="SECONDS",
              help="How long a file's size must be stable without a close event [1.0].")
@click.option("--text-field", metavar="NAME", help="JSON field holding the text [text].")
@click.option("--id-field", metavar="NAME", help="JSON field holding the id [id].")
@click.option("--metrics-port", type=int, metavar="PORT",
              help="Serve Prometheus metrics on 127.0.0.1:PORT (needs the metrics extra).")
@click.option("--workers", type=click.IntRange(1, 64), metavar="N",
              help="Scoring processes over the feed directory [1] (README: Using every core).")
def run(config_path, feed, model, state, learn, polling, source, role, consumer, settle,
        text_field, id_field, metrics_port, workers) -> None:
    """Watch the feed directory, score every post, send alerts; stop with SIGTERM/SIGINT."""
    from monitor.config import ConfigError, load_settings

    try:
        settings = load_settings(
            config_path, feed=feed, model=model, state=state, polling=polling,
            source=source, settle=settle, text_field=text_field, id_field=id_field,
            metrics_port=metrics_port, workers=workers, learning__enabled=learn,
            redis__role=role, redis__consumer=consumer,
        )
    except ConfigError as error:
        raise CommandError(str(error)) from None
    raise SystemExit(_run(settings))


def _run(settings) -> int:
    import faulthandler
    import signal
    import threading

    # `kill -USR1 PID` prints every thread's stack to stderr: why a daemon is stuck
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr without a file descriptor
        pass  # (io.UnsupportedOperation is an OSError): run inside a test runner
    stopping = threading.Event()  # a signal during start-up still means a clean stop
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    from monitor import daemon, statelock
    from monitor.plugins import PluginError, get_plugin_manager

    model = load_model(settings.model)
    try:
        pm = get_plugin_manager(settings=settings)
    except PluginError as error:
        raise CommandError(str(error)) from None
    try:
        lock = statelock.acquire(settings.state)  # one daemon per state directory
    except statelock.StateLocked as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"state directory {settings.state}: {error.strerror}") from None
    metrics = None
    try:
        metrics = _metrics(settings)
        try:
            runner = daemon.build(settings, model, pm, metrics)
        except ValueError as error:
            raise CommandError(str(error)) from None
        runner.install_signal_handlers()
        if stopping.is_set():
            runner.stopping.set()
        return runner.run()
    finally:
        if metrics is not None:
            metrics.close()
        lock.close()


def _metrics(settings):
    if settings.metrics_port is None:
        return None
    from monitor.prom import Metrics, MetricsUnavailable

    try:
        return Metrics(settings.metrics_port, settings.metrics_host)
    except MetricsUnavailable as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"--metrics-port {settings.metrics_port}: {error.strerror}") from None
