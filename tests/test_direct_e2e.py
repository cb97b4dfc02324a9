"""Cast & Direct through gradio_client on tiny models: /direct streams takes into 10 slots as they finish, then
/takes, /take_circle and /export (a zip of audio with a take sheet naming every file)."""
import io
import json
import zipfile

import pytest
import soundfile as sf
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow

DIRECT_PARAMS = ["line", "direction", "cast_member", "k", "backend", "rvc_voice", "seed", "language", "project"]


@pytest.fixture(scope="module")
def served(new_home, launch_studio, espeak):
    url, studio, close = launch_studio(new_home(), DEFAULT_DIFF_STEPS="2", SE_MODEL="resemblyzer")
    client = Client(url, verbose=False)
    ref = espeak("The tide comes in twice a day and I have watched it for forty years.", voice="en-us+Annie")
    client.predict(handle_file(str(ref)), "Marnie", "an old fisherwoman", "english", api_name="/cast_upload")
    yield client, studio
    close()


def filled(output) -> int:
    return sum(slot is not None for slot in output[:10])


def test_the_api_has_the_contracted_names_and_parameters(served):
    client, _ = served
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in api["/direct"]["parameters"]] == DIRECT_PARAMS
    defaults = {p["parameter_name"]: p["parameter_default"] for p in api["/direct"]["parameters"]}
    assert (defaults["k"], defaults["backend"], defaults["language"], defaults["project"]) == (3, "seed-vc", "auto",
                                                                                             "default")
    assert [p["parameter_name"] for p in api["/takes"]["parameters"]] == ["project"]
    assert [p["parameter_name"] for p in api["/take_circle"]["parameters"]] == ["take_id", "circled"]
    assert [p["parameter_name"] for p in api["/export"]["parameters"]] == ["project", "format"]


def test_takes_stream_in_then_are_ranked_circled_and_exported(served):
    client, _ = served
    job = client.submit("Halt!", "shout in anger", "Marnie", 3, "seed-vc", None, 11, "english", "e2e",
                        api_name="/direct")
    health = client.predict(api_name="/health")  # answers while the generation holds the gpu lane
    assert health["status"] == "ok" and not job.done()
    final = job.result(timeout=600)
    outputs = job.outputs()
    assert all(len(o) == 12 for o in outputs)  # 10 audio slots, the takes as JSON, a status line
    counts = [filled(o) for o in outputs]
    assert counts[-1] == 3 and 1 in counts and counts == sorted(counts)  # take 1 was out before take 3
    assert [len(o[10]) for o in outputs] == counts  # the JSON lists exactly the takes in the slots
    takes = final[10]
    assert sorted(t["rank"] for t in takes) == [1, 2, 3] and {t["cast_member"] for t in takes} == {"Marnie"}
    by_rank = sorted(takes, key=lambda t: t["rank"])
    assert [t["similarity"] for t in by_rank] == sorted((t["similarity"] for t in takes), reverse=True)
    assert sorted(t["seed"] for t in takes) == [11, 12, 13]
    assert "Voice: an old fisherwoman" in takes[0]["instruct"]
    assert sf.info(final[0]).samplerate == 22050

    listed = client.predict("e2e", api_name="/takes")
    assert [t["take_id"] for t in listed] == [t["take_id"] for t in takes]
    circled = client.predict(by_rank[0]["take_id"], True, api_name="/take_circle")
    assert circled["circled"] is True

    archive = client.predict("e2e", "flac", api_name="/export")
    with zipfile.ZipFile(archive) as z:
        audio = sorted(n for n in z.namelist() if n.endswith(".flac"))
        sheet = json.loads(z.read("takes.json"))
        assert len(audio) == 3 and sorted(r["file"] for r in sheet) == audio
        assert [r["take_id"] for r in sheet if r["circled"]] == [by_rank[0]["take_id"]]
        assert sf.info(io.BytesIO(z.read(audio[0]))).samplerate == 22050
        assert "takes.csv" in z.namelist()


@pytest.mark.parametrize("args, words", [
    (("Halt!", "shout", "Nobody"), "no cast member named 'Nobody'"),
    (("Halt!", "shout", "Marnie", 3, "rvc", "Ghost"), "no RVC voice named 'Ghost'"),
    (("", "shout", "Marnie"), "the line is empty"),
])
def test_bad_requests_get_clear_messages(served, args, words):
    client, _ = served
    with pytest.raises(Exception, match=words):
        client.predict(*args, api_name="/direct")


def test_k_above_ten_and_unknown_export_formats_are_refused(served):
    client, _ = served
    with pytest.raises(Exception, match="maximum value 10"):
        client.predict("Halt!", "shout", "Marnie", 11, api_name="/direct")
    with pytest.raises(Exception, match=r"aiff is not in the list of choices: \['wav', 'flac', 'mp3'\]"):
        client.predict("e2e", "aiff", api_name="/export")


def test_a_cancelled_job_leaves_the_takes_it_made_ranked(served):
    served_client, studio = served
    # job.cancel() returns once the server has closed the run, after the take being made: give it time on a busy CPU
    client = Client(served_client.src, verbose=False, httpx_kwargs={"timeout": 300})
    job = client.submit("Halt!", "shout in anger", "Marnie", 10, "seed-vc", None, 21, "english", "cancelled",
                        api_name="/direct")
    for streamed in job:   # cancel once the first take has reached the client, with nine still to make
        if streamed[0] is not None:
            break
    job.cancel()
    listed = client.predict("cancelled", api_name="/takes")
    assert 1 <= len(listed) < 10
    by_rank = sorted(listed, key=lambda t: t["rank"] or 0)
    assert [t["rank"] for t in by_rank] == list(range(1, len(listed) + 1))
    assert [t["similarity"] for t in by_rank] == sorted((t["similarity"] for t in listed), reverse=True)
    assert studio.director.last_run().takes[0].project == "cancelled" and not studio.director.last_run().running
