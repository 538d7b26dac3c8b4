"""`thanosql run` and `thanosql query` print tables people can read; errors exit non-zero."""

from __future__ import annotations

import subprocess
import sys

from tests.workspace_state import snapshot


def thanosql(*args, cwd=None, input=None):
    return subprocess.run(
        [sys.executable, "-m", "sql_frontend.interfaces.cli", *args], capture_output=True, text=True, cwd=cwd, input=input, timeout=600
    )


def test_query_prints_a_table(tutorial_home):
    result = thanosql("--home", str(tutorial_home), "query", "SELECT * FROM mnist_train LIMIT 5")
    assert result.returncode == 0, result.stderr
    assert "thanosql-dataset/mnist_data/train/6782.jpg" in result.stdout
    assert "image_path" in result.stdout and "[5 rows x 3 columns]" in result.stdout


def test_run_script_prints_each_statement_and_its_result(tutorial_home, tmp_path):
    script = tmp_path / "s.sql"
    script.write_text(
        "SELECT label, count(*) AS n FROM mnist_test GROUP BY label ORDER BY label;\n"
        "PRINT IMAGE AS (SELECT image_path, my_image_search_model_simclr_similarity1 FROM (\n"
        "  SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model\n"
        "  AS SELECT * FROM mnist_test) ORDER BY my_image_search_model_simclr_similarity1 DESC LIMIT 2)\n"
    )
    result = thanosql("--home", str(tutorial_home), "run", str(script))
    assert result.returncode == 0, result.stderr
    assert "[1/2] SELECT label" in result.stdout and "[10 rows x 2 columns]" in result.stdout
    assert "[2/2] PRINT IMAGE" in result.stdout
    lines = result.stdout.splitlines()
    first_image = next(line for line in lines if line.endswith("1.0000"))
    assert first_image.startswith(str(tutorial_home / "thanosql-dataset/mnist_data/test/923.jpg"))
    picture = next(line for line in lines if line.startswith("picture: "))[len("picture: "):]
    from PIL import Image

    with Image.open(picture) as image:
        assert image.width >= 2 * 100  # two images side by side
    assert "Searching" not in result.stderr  # a query prints its result, nothing else


def test_errors_exit_1_with_the_position(tutorial_home):
    before = snapshot(tutorial_home)
    result = thanosql("--home", str(tutorial_home), "query", "SELECT *\nFROM missing_table")
    assert result.returncode == 1
    assert "error: line 2:6: Table 'missing_table' does not exist" in result.stderr
    assert "hint:" in result.stderr
    assert snapshot(tutorial_home) == before


def test_query_shows_the_results_before_a_failing_statement(tutorial_home):
    result = thanosql("--home", str(tutorial_home), "query", "SELECT 41 + 1 AS answer; SELECT * FROM missing_table")
    assert result.returncode == 1 and "42" in result.stdout and "missing_table" in result.stderr


def test_the_folder_example_runs_as_readme_says(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    home = tmp_path / "thanosql-workspace"
    made = subprocess.run([sys.executable, str(repo / "examples" / "make_tiny_classifier.py"), str(home)], capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    result = thanosql("--home", str(home), "run", str(repo / "examples" / "classify_folder.sql"))
    assert result.returncode == 0, result.stderr
    assert "[2/5] CREATE TABLE labels USING vit" in result.stdout and "[10 rows x 4 columns]" in result.stdout
    assert "red_0.jpg" in result.stdout and "picture: " in result.stdout


def test_list_prints_the_tables(tutorial_home):
    result = thanosql("--home", str(tutorial_home), "query", "LIST TABLE")
    assert result.returncode == 0, result.stderr
    assert "mnist_train" in result.stdout and "my_image_search_model_simclr" in result.stdout and "embedding_columns" in result.stdout


def test_a_new_token_for_a_name_says_it_replaces_the_old_one(tmp_path):
    home = tmp_path / "workspace"
    first = thanosql("--home", str(home), "token", "create", "carol")
    second = thanosql("--home", str(home), "token", "create", "carol")
    assert first.returncode == second.returncode == 0 and first.stdout != second.stdout
    assert "replaces" not in first.stderr and "'carol''s previous token, which no longer works" in second.stderr


def test_home_with_url_says_it_is_not_used(tmp_path):
    result = thanosql("--home", str(tmp_path / "workspace"), "--url", "http://127.0.0.1:9", "query", "SELECT 1")
    assert "--home is not used with --url" in result.stderr and not (tmp_path / "workspace").exists()
