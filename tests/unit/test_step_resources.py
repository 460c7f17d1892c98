"""A step's process records its own peak memory, bytes written and seconds when it exits."""

import json
import subprocess
import sys

from components.common.contract.artifact_files import RESOURCES_FILE


def test_a_process_records_its_peak_memory_and_the_bytes_it_wrote_at_exit(tmp_path):
    code = (
        "import os\n"
        "from components.common.runtime.step_resources import record_at_exit\n"
        f"record_at_exit({str(tmp_path)!r})\n"
        "block = b'x' * (300 * 1024 * 1024)\n"  # written pages count toward the peak
        f"open({str(tmp_path / 'out.bin')!r}, 'wb').write(os.urandom(8_000_000))\n"
        "del block\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    recorded = json.loads((tmp_path / RESOURCES_FILE).read_text())
    assert recorded["peak_rss_mb"] >= 300
    assert recorded["bytes_written"] >= 8_000_000
    assert recorded["seconds"] >= 0


def test_nothing_is_recorded_where_the_output_was_never_made(tmp_path):
    missing = tmp_path / "never-made"
    code = f"from components.common.runtime.step_resources import record_at_exit\nrecord_at_exit({str(missing)!r})\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert not missing.exists()
