"""The README's API examples, run as written with curl against the local server: each answers the status its
comment shows, with the fields it shows (a README whose examples drift from the service fails here)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from tests.conftest import ROOT


def readme_examples() -> list[tuple[str, int, str]]:
    """(curl command, status, the commented answer) of each example of the README's API section."""
    section = (ROOT / "README.md").read_text().split("## API", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    examples, command, answer = [], "", ""
    for line in block.splitlines():
        if line.startswith("curl "):
            command, answer = line, ""
        elif line.startswith("# ") and command:
            if re.match(r"# \d{3} ", line):
                status = int(line[2:5])
                answer = line[6:]
                examples.append((command, status, answer))
            else:
                examples[-1] = (examples[-1][0], examples[-1][1], examples[-1][2] + line[1:])
        elif command and not line.startswith("#"):
            command += " " + line.strip()
    return examples


def test_every_readme_example_answers_as_documented(server):
    examples = readme_examples()
    assert [status for _, status, _ in examples] == [200, 200, 200, 202, 200]
    last_prediction: dict = {}
    for command, status, answer in examples:
        if "<from predict>" in command:  # the feedback example: on the first example's real prediction
            command = command.replace('"<from predict>",', f'"{last_prediction["prediction_id"]}",', 1)
            command = command.replace('"<from predict>",', f'"{last_prediction["prediction_token"]}",', 1)
        arguments = shlex.split(command.replace("localhost:7071", server.url))
        done = subprocess.run(
            [*arguments, "--silent", "--write-out", "\n%{http_code}"], capture_output=True, text=True, timeout=30
        )
        body, code = done.stdout.rsplit("\n", 1)
        assert int(code) == status, (command, body)
        shown = set(re.findall(r'"(\w+)"(?=[:,}\]])', answer.split("}   ")[0]))
        got = json.loads(body)
        flattened = json.dumps(got)
        for field in shown:
            assert f'"{field}"' in flattened, (field, command)
        if "predictions" in got:
            assert got["predictions"][2]["language"] == "fr" and got["predictions"][1]["index"] == 1
        if not last_prediction and "label" in got:
            last_prediction = got
