"""`headstart run --containers`: a step's container may write only where the run keeps its outputs."""

from kfp.local import docker_task_handler

from pipeline.local.containers import container_volumes, docker_runner


def test_inputs_are_mounted_read_only_and_outputs_read_write(tmp_path):
    source, base_model, weights = tmp_path / "images", tmp_path / "base.keras", tmp_path / "weights.h5"
    serving_root, cache_root = tmp_path / "serving", tmp_path / "cache"
    for directory in (source, serving_root, cache_root):
        directory.mkdir()
    for file in (base_model, weights):
        file.write_bytes(b"")

    volumes = container_volumes(read_only=[str(source), str(base_model), str(weights)],
                                read_write=[str(serving_root), str(cache_root)])

    assert volumes == {
        str(source): {"bind": str(source), "mode": "ro"},
        str(base_model): {"bind": str(base_model), "mode": "ro"},
        str(weights): {"bind": str(weights), "mode": "ro"},
        str(serving_root): {"bind": str(serving_root), "mode": "rw"},
        str(cache_root): {"bind": str(cache_root), "mode": "rw"},
    }


def test_names_that_are_not_paths_here_are_not_mounted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()

    volumes = container_volumes(read_only=["images", "demo:digits", "mobilenet", "imagenet", "gs://bucket/images"],
                                read_write=["", "gs://bucket/serving"])

    assert volumes == {str(tmp_path / "images"): {"bind": str(tmp_path / "images"), "mode": "ro"}}


class _Container:
    def logs(self, **kwargs):
        return iter([])

    def wait(self):
        return {"StatusCode": 0}

    def remove(self, **kwargs):
        pass


class _Client:
    """Records what a container would be started with."""

    def __init__(self):
        self.runs = []
        self.containers = self

    def run(self, **kwargs):
        self.runs.append(kwargs)
        return _Container()


def test_every_step_container_gets_the_mounts_beside_the_pipeline_root(tmp_path, monkeypatch):
    monkeypatch.setattr(docker_task_handler, "run_docker_container", docker_task_handler.run_docker_container)
    source, cache_root, pipeline_root = tmp_path / "images", tmp_path / "cache", tmp_path / "runs"
    for directory in (source, cache_root, pipeline_root):
        directory.mkdir()

    docker_runner(read_only=[str(source)], read_write=[str(cache_root)])
    client = _Client()
    code = docker_task_handler.run_docker_container(
        client, "headstart:test", ["step"], volumes={str(pipeline_root): {"bind": str(pipeline_root), "mode": "rw"}})

    assert code == 0
    assert client.runs[0]["volumes"] == {
        str(source): {"bind": str(source), "mode": "ro"},
        str(cache_root): {"bind": str(cache_root), "mode": "rw"},
        str(pipeline_root): {"bind": str(pipeline_root), "mode": "rw"},
    }
