"""Spark in local mode listens on loopback only, unless a TANDEM_* setting names a master or a bind address.

Source: Spark configuration reference (spark.driver.bindAddress, spark.driver.host: by default the machine's
hostname address, reachable from the network); issue 26 §4 (Spark bound to a non-loopback address in local mode).
"""

from __future__ import annotations

import pytest

from smartapp.measures.engines import spark_conf, spark_session

BIND, HOST = "spark.driver.bindAddress", "spark.driver.host"


@pytest.mark.parametrize(
    ("environ", "master", "bind", "host"),
    [
        ({}, "local[2]", "127.0.0.1", "127.0.0.1"),  # the default: local mode, loopback
        ({"TANDEM_SPARK_MASTER": "local[4]"}, "local[4]", "127.0.0.1", "127.0.0.1"),
        ({"TANDEM_SPARK_MASTER": "  "}, "local[2]", "127.0.0.1", "127.0.0.1"),
        # A cluster: the driver must be reachable from the executors; Spark's own choice stands.
        ({"TANDEM_SPARK_MASTER": "spark://spark.example.org:7077"}, "spark://spark.example.org:7077", None, None),
        ({"TANDEM_SPARK_BIND_ADDRESS": "10.0.0.5"}, "local[2]", "10.0.0.5", None),
    ],
)  # fmt: skip
def test_the_driver_listens_where_the_settings_say(
    environ: dict[str, str], master: str, bind: str | None, host: str | None
) -> None:
    got_master, conf = spark_conf(environ)
    assert got_master == master
    assert conf.get(BIND) == bind and conf.get(HOST) == host
    assert conf["spark.ui.enabled"] == "false"


def test_the_local_session_is_bound_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real session (one JVM per process, as the measures use it) carries the loopback settings."""
    pytest.importorskip("pyspark")
    monkeypatch.delenv("TANDEM_SPARK_MASTER", raising=False)
    monkeypatch.delenv("TANDEM_SPARK_BIND_ADDRESS", raising=False)
    conf = spark_session().sparkContext.getConf()
    assert conf.get(BIND) == "127.0.0.1" and conf.get(HOST) == "127.0.0.1"
    assert conf.get("spark.master").startswith("local")


def test_the_spark_settings_are_known_settings() -> None:
    """An unknown TANDEM_* variable stops the app (a typo): the two Spark settings must be known ones."""
    from smartapp.config import Settings

    settings = Settings.from_env(
        {"TANDEM_SPARK_MASTER": "spark://spark.example.org:7077", "TANDEM_SPARK_BIND_ADDRESS": "10.0.0.5"}
    )
    assert (settings.spark_master, settings.spark_bind_address) == (
        "spark://spark.example.org:7077",
        "10.0.0.5",
    )
