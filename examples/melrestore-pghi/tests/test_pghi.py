import json
import os
import shutil
from pathlib import Path

os.environ["MELRESTORE_PLUGINS"] = "melrestore,melrestore-pghi"

from click.testing import CliRunner  # noqa: E402

from melrestore.cli import cli  # noqa: E402
from melrestore.testing import check_vocoder  # noqa: E402
from melrestore_pghi import PGHIVocoder  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "recordings"


def test_pghi_keeps_the_vocoder_contract():
    assert len(check_vocoder(PGHIVocoder())) == 5


def test_melrestore_lists_and_uses_the_plugin(tmp_path):
    listing = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    pghi = next(row for row in listing if row["name"] == "pghi")
    assert pghi["distribution"] == "melrestore-pghi" and pghi["provides"] == {"vocoders": ["pghi"]}

    shutil.copytree(EXAMPLES, tmp_path / "in")
    result = CliRunner().invoke(cli, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--vocoder", "pghi", "--inpainter", "interpolation"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "melrestore-report.json").read_text())
    assert report["pipeline"]["vocoder"] == "pghi"
    assert report["summary"]["gaps_repaired"] == report["summary"]["gaps_found"] > 0
