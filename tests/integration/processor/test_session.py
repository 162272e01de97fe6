"""The session's JVM runs with the JIT thresholds processor.session sets (they only count when
the JVM starts, so a session that started without them would not show them)."""

from __future__ import annotations

from processor.session import JIT_OPTIONS


def test_the_driver_jvm_starts_with_the_jit_thresholds(spark):
    runtime = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = set(runtime.getInputArguments())
    assert set(JIT_OPTIONS.split()) <= arguments
    # What HotSpot itself took, not only what it was given.
    bean = spark._jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        spark._jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    )
    assert bean.getVMOption("Tier4InvocationThreshold").getValue() == "50000"
    assert spark.conf.get("spark.executor.extraJavaOptions") == JIT_OPTIONS
