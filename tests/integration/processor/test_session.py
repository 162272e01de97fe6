"""The session's JVM runs with the JIT settings processor.session sets (they only count when
the JVM starts, so a session that started without them would not show them)."""

from __future__ import annotations

import json

from processor.session import JIT_DIRECTIVES, JIT_OPTIONS


def _management(spark):
    return spark._jvm.java.lang.management.ManagementFactory


def test_the_driver_jvm_starts_with_the_jit_thresholds(spark):
    runtime = _management(spark).getRuntimeMXBean()
    arguments = set(runtime.getInputArguments())
    assert set(JIT_OPTIONS.split()) <= arguments
    # What HotSpot itself took, not only what it was given.
    bean = _management(spark).getPlatformMXBean(
        spark._jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    )
    assert bean.getVMOption("Tier4InvocationThreshold").getValue() == "50000"
    # Executors get the thresholds only: the directives file may not be where they run.
    assert spark.conf.get("spark.executor.extraJavaOptions") == JIT_OPTIONS


def test_the_driver_keeps_the_planners_packages_out_of_c2(spark):
    bean = _management(spark).getPlatformMXBean(
        spark._jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    )
    # HotSpot refuses to start on a directives file it cannot read: that the JVM runs with the
    # option set means it took the file (what the file says: tests/unit/processor).
    assert bean.getVMOption("CompilerDirectivesFile").getValue() == str(JIT_DIRECTIVES)
    assert json.loads(JIT_DIRECTIVES.read_text())[0]["c2"] == {"Exclude": True}
