"""Cast & Direct: K directed takes of a line in a cast voice, ranked by how much they sound like it.

A run reads as numbered stages (`Director.direct_lines`):
  0. check the request and resolve each line's voice (cast member, RVC voice) and TTS instruct;
  1. TTS: every line x K rows in as few batched VoiceDesign calls as the engine's row bound allows;
  2. conversion of each line's takes to its voice (Seed-VC timbre-only by default, or RVC), in the
     schedule `bench/direct.py` chose; each take is scored, kept and yielded as soon as it exists;
  3. ranking of each line's takes (default: speaker similarity to the cast reference); a run that stops early
     (cancelled, the page closed, an error) ranks the takes it kept among themselves as it closes.
Every take keeps its TTS audio and seeds, so it can be re-converted alone (`reproduce`) and a line
re-rolled with new seeds (`reroll`).
"""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator, NamedTuple

import numpy as np

from .audio import load_audio, peak_safe
from .engines.asr import has_words
from .engines.vc import Voice
from .languages import language_key
from .library import LibraryError
from .limits import MAX_SEED, check_seed
from .takes import BACKENDS, SCENE_PROJECT, Take, clean_project, run_of

if TYPE_CHECKING:
    from .service import Studio

SEED_RANGE = MAX_SEED + 1  # derived seeds (seed + call, seed + take) wrap into the accepted range
MIN_TTS_S = 0.5            # a TTS take cut shorter by an early EOS is padded with silence to this before conversion
# How each line's K takes go through the converter (same audio either way: every take has its own seed):
#   "each": one call per take (first take soonest), "batch": one call for all K,
#   "first": the first take alone, then the other K-1 in one call.
SCHEDULES = ("each", "first", "batch")

Progress = Callable[[float, float, str], None]   # (done, total, what is happening)
Scorer = Callable[[Take], float | None]


class DirectError(ValueError):
    """A directing request that cannot be done (or go on); the message is shown to the user."""


@dataclass(frozen=True)
class DirectOptions:
    """Bounds and defaults of a directing run; the Cast & Direct tab takes its ranges from here."""
    K_MIN: ClassVar[int] = 1
    K_MAX: ClassVar[int] = 10            # Vocalino's bound too; one TTS call holds them (engines.tts.MAX_SAMPLES)
    K_DEFAULT: ClassVar[int] = 3
    LINE_MAX_CHARS: ClassVar[int] = 300      # one line of dialogue
    DIRECTION_MAX_CHARS: ClassVar[int] = 200  # leaves room in the TTS instruct for the cast description
    BACKENDS: ClassVar[tuple[str, ...]] = BACKENDS

    convert_style: bool = False       # Seed-VC: also take the reference's style (undoes the direction); default off
    diffusion_steps: int | None = None  # Seed-VC: None = the studio's DEFAULT_DIFF_STEPS
    schedule: str = "each"            # see SCHEDULES; chosen with bench/direct.py (docs/benchmarks.md)
    tts: dict = field(default_factory=dict)  # extra VoiceDesigner.design settings (temperature, max_new_tokens, ...)
    vc: dict = field(default_factory=dict)   # extra converter settings (cfg rates; RVC key, f0_method, ...)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise DirectError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")


class LineSpec(NamedTuple):
    """One line to direct: what to say, how, and in whose voice."""
    line: str
    direction: str
    cast_member: str | None
    backend: str = "seed-vc"
    rvc_voice: str | None = None
    language: str = "auto"
    convert_style: bool = False


@dataclass(frozen=True)
class DirectEvent:
    """What a run reports: `kind` "tts" (a batched TTS call finished), "take" (a take is ready) or
    "ranked" (the line is done; `takes` in rank order, best first)."""
    kind: str
    line: int                  # index into the lines of the run
    takes: list[Take]          # this line's takes so far (in the order made, or ranked)
    done: int                  # takes ready in the whole run
    total: int                 # takes the run will make
    message: str = ""


@dataclass
class _Line:
    """A checked line with its resolved voice."""
    spec: LineSpec
    instruct: str
    member_id: str | None
    reference: tuple[np.ndarray, int] | None
    voice: Voice
    tts: list[tuple[np.ndarray, int, int, str]] = field(default_factory=list)  # (wave, sr, tts_seed, batch_id)
    takes: list[Take] = field(default_factory=list)
    ranked: bool = False


@dataclass(frozen=True)
class RunState:
    """A user's latest Cast & Direct run as its page shows it again after a reload: the request (the first line's,
    with K and settings) and its takes in the order made (ranked once the run is over)."""
    spec: LineSpec
    k: int
    seed: int | None
    project: str
    takes: list[Take]
    running: bool


def fold_instruct(direction: str, description: str, limit: int) -> str:
    """The TTS instruct: the direction, with the cast member's description (cut to fit) so the performance
    suits the voice it will be converted to."""
    direction, description = direction.strip(), " ".join(str(description or "").split())
    if not description:
        return direction
    head = f"{direction.rstrip('.')}. Voice: " if direction else "Voice: "
    room = limit - len(head)
    return head + (description if len(description) <= room else description[: max(room - 1, 0)].rstrip() + "…")


def by_similarity(take: Take) -> float | None:
    """The default ranking score: speaker similarity to the cast reference."""
    return take.similarity


class Director:
    """Runs directing sessions for a Studio (its library, models and take store)."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio
        self.scorer: Scorer | None = None   # how each line's takes are ranked; None = by similarity
        self._running: dict[str | None, tuple[str, RunState]] = {}  # user -> (run id, its request) while it runs

    # -- public -----------------------------------------------------------------------------------

    def direct(self, line: str, direction: str, cast_member: str | None, k: int = DirectOptions.K_DEFAULT,
               backend: str = "seed-vc", rvc_voice: str | None = None, seed: int | None = None,
               language: str = "auto", project: str = "default", user: str | None = None,
               convert_style: bool = False, on_progress: Progress | None = None,
               options: DirectOptions | None = None) -> Iterator[DirectEvent]:
        """K takes of one line (see direct_lines)."""
        spec = LineSpec(line, direction, cast_member, backend, rvc_voice, language, convert_style)
        return self.direct_lines([spec], k, seed, project, user, on_progress, options)

    def direct_lines(self, lines: list[LineSpec], k: int, seed: int | None, project: str,
                     user: str | None = None, on_progress: Progress | None = None,
                     options: DirectOptions | None = None) -> Iterator[DirectEvent]:
        """K takes of every line: one event per batched TTS call, per take as soon as it is ready, and per
        line once ranked. A cast member or RVC voice deleted mid-run (by anyone) does not stop it: the run
        finishes with the voice it resolved here (the reference is held, an RVC voice's files stay in the
        trash) and its takes keep the name, so a restore brings back a library consistent with them."""
        options = options or DirectOptions()
        # 0. check everything before any model runs, so a bad request costs nothing
        k, seed, project = self._check_k(k), self._check_seed(seed), clean_project(project)
        if not lines:
            raise DirectError("no line to direct")
        resolved = [self._resolve(spec, options) for spec in lines]
        return self._run(resolved, k, seed, project, user, on_progress or (lambda *_: None), options)

    def rank(self, takes: list[Take], scorer: Scorer | None = None) -> list[Take]:
        """Takes in rank order (best first) by `scorer` (default: similarity); score and rank are stored.
        Takes without a score rank last, in the order they were made."""
        scorer = scorer or by_similarity
        return self.studio.takes.rank(takes, [scorer(t) for t in takes])

    def last_run(self, user: str | None = None) -> RunState | None:
        """What Cast & Direct shows `user` after a page reload: their run in progress (its takes so far), else
        their latest run as it ended; None if they have none."""
        if user in self._running:
            run_id, state = self._running[user]
            return replace(state, takes=[t for t in self.studio.takes.list(state.project, user)
                                         if run_of(t) == run_id and t.line == state.spec.line])
        takes = self.studio.takes.last_run(user)
        if not takes:
            return None
        t, settings = takes[0], takes[0].settings
        spec = LineSpec(t.line, t.direction, t.cast_member, t.backend, t.rvc_voice, settings.get("language", "auto"),
                        bool(settings.get("convert_style", False)))
        return RunState(spec, settings.get("k", len(takes)), settings.get("run_seed", t.seed), t.project, takes, False)

    def reproduce(self, take_id: str) -> tuple[np.ndarray, int]:
        """Re-convert one take alone from its stored TTS audio, seed and settings: the same audio as the
        take made in its batch (peak-safe, before the 16-bit file)."""
        take = self.studio.takes.get(take_id)
        tts_wave, tts_sr = load_audio(take.tts_path)
        member = take.settings.get("cast_member_id")
        try:
            reference = self.studio.library.reference(member) if member else None
        except LibraryError:
            raise DirectError(f"cast member {take.cast_member!r} was deleted; its takes cannot be re-converted") \
                from None
        voice = self._voice(take.backend, reference, take.rvc_voice)
        waves, sr = self._convert(take.backend, voice, [tts_wave], tts_sr, [take.seed], take.settings, None)
        return peak_safe(waves[0]), sr

    def reroll(self, take_id: str, k: int | None = None, seed: int | None = None, user: str | None = None,
               on_progress: Progress | None = None, options: DirectOptions | None = None) -> Iterator[DirectEvent]:
        """The take's line again, same direction and voice, with new seeds (or `seed`); under auth only
        `user`'s own takes."""
        t = self.studio.takes.get(take_id, user)
        spec = LineSpec(t.line, t.direction, t.cast_member, t.backend, t.rvc_voice,
                        t.settings.get("language", "auto"), bool(t.settings.get("convert_style", False)))
        k = k or len([x for x in self.studio.takes.list(t.project, t.user) if x.batch_id == t.batch_id
                      and x.line == t.line]) or DirectOptions.K_DEFAULT
        return self.direct_lines([spec], k, seed, t.project, user if user is not None else t.user, on_progress,
                                 options)

    # -- 0. checks ------------------------------------------------------------------------------

    @staticmethod
    def _check_k(k) -> int:
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise DirectError(f"number of takes must be a whole number, got {k!r}") from None
        if not DirectOptions.K_MIN <= k <= DirectOptions.K_MAX:
            raise DirectError(f"number of takes must be between {DirectOptions.K_MIN} and {DirectOptions.K_MAX}, "
                              f"got {k}")
        return k

    @staticmethod
    def _check_seed(seed) -> int:
        return secrets.randbits(31) if seed is None or seed == "" else check_seed(seed)

    @staticmethod
    def check_words(line: str, direction: str = "") -> tuple[str, str]:
        """The line and direction with their spaces folded; refused when the line is empty or either is too long.
        Cheap: the web app runs it before a job joins the GPU lane."""
        text, direction = " ".join(str(line or "").split()), " ".join(str(direction or "").split())
        if not text:
            raise DirectError("the line is empty: type what the character says")
        if not has_words(text):
            raise DirectError(f"the line {text[:40]!r} has no words to speak: type what the character says "
                              f"(a pause or a sigh belongs in the direction)")
        if len(text) > DirectOptions.LINE_MAX_CHARS:
            raise DirectError(f"the line is {len(text)} characters; keep it under "
                              f"{DirectOptions.LINE_MAX_CHARS} (split long speeches into lines)")
        if len(direction) > DirectOptions.DIRECTION_MAX_CHARS:
            raise DirectError(f"the direction is {len(direction)} characters; keep it under "
                              f"{DirectOptions.DIRECTION_MAX_CHARS}")
        return text, direction

    def _resolve(self, spec: LineSpec, options: DirectOptions) -> _Line:
        from .engines.tts import MAX_INSTRUCT_CHARS

        text, direction = self.check_words(spec.line, spec.direction)
        if spec.backend not in BACKENDS:
            raise DirectError(f"backend must be one of {', '.join(BACKENDS)}, got {spec.backend!r}")
        cast = str(spec.cast_member or "").strip() or None
        if spec.backend == "seed-vc" and cast is None:
            raise DirectError("pick a cast member: Seed-VC converts the takes to their voice")
        if spec.backend == "rvc" and not str(spec.rvc_voice or "").strip():
            raise DirectError("pick an RVC voice (add one in the Convert tab)")
        member, reference = self.studio.library.load(cast) if cast else (None, None)  # one consistent read
        description = member.description if member else ""
        if not direction and not description:
            raise DirectError("give a direction, e.g. 'whisper with trembling fear'")
        voice = self._voice(spec.backend, reference, spec.rvc_voice)
        clean = spec._replace(line=text, direction=direction, language=language_key(spec.language),
                              cast_member=member.name if member else None,
                              rvc_voice=str(spec.rvc_voice).strip() if spec.backend == "rvc" else None,
                              convert_style=bool(spec.convert_style or options.convert_style))
        return _Line(clean, fold_instruct(direction, description, MAX_INSTRUCT_CHARS),
                     member.id if member else None, reference, voice)

    def _voice(self, backend: str, reference: tuple[np.ndarray, int] | None, rvc_voice: str | None) -> Voice:
        """The converter's target: the cast reference (Seed-VC) or the RVC voice's model files."""
        if backend == "rvc":
            v = self.studio.rvc_voices.get(rvc_voice)
            return Voice(rvc_model=v.model_path, rvc_index=v.index_path)
        return Voice(reference=reference)

    # -- the run --------------------------------------------------------------------------------

    def _run(self, lines: list[_Line], k: int, seed: int, project: str, user: str | None, progress: Progress,
             options: DirectOptions) -> Iterator[DirectEvent]:
        run_id = uuid.uuid4().hex
        if not project.startswith(SCENE_PROJECT):  # Cast & Direct's run (a Scene render shows in the Scene tab)
            self._running[user] = (run_id, RunState(lines[0].spec, k, seed, project, [], True))
        try:
            yield from self._stages(lines, k, seed, project, user, progress, options, run_id)
        finally:  # cancelled, closed or failed part-way: the takes kept so far are ranked among themselves
            if self._running.get(user, ("",))[0] == run_id:
                del self._running[user]
            for line in lines:
                if line.takes and not line.ranked:
                    self.rank(line.takes)

    def _stages(self, lines: list[_Line], k: int, seed: int, project: str, user: str | None, progress: Progress,
                options: DirectOptions, run_id: str) -> Iterator[DirectEvent]:
        total, done = len(lines) * k, 0
        designer = self.studio.designer()
        from .engines.tts import MAX_SAMPLES

        # 1. TTS: rows (line, take) grouped by language, in calls of at most MAX_SAMPLES rows
        rows = [(i, j) for i in range(len(lines)) for j in range(k)]
        calls: list[list[tuple[int, int]]] = []
        for lang in dict.fromkeys(line.spec.language for line in lines):
            same = [r for r in rows if lines[r[0]].spec.language == lang]
            calls += [same[a: a + MAX_SAMPLES] for a in range(0, len(same), MAX_SAMPLES)]
        for c, call in enumerate(calls):
            tts_seed, batch_id = (seed + c) % SEED_RANGE, uuid.uuid4().hex
            desc = f"TTS: {len(call)} take(s) in one batched call" + (
                f" ({c + 1}/{len(calls)})" if len(calls) > 1 else "")
            progress(0, 1, desc)
            waves = designer.design([lines[i].spec.line for i, _ in call], [lines[i].instruct for i, _ in call],
                                    language=lines[call[0][0]].spec.language, n=1, seed=tts_seed,
                                    on_step=lambda d, t, desc=desc: progress(d, t, desc), **options.tts)
            for (i, _), wave in zip(call, waves):
                lines[i].tts.append((_pad(wave, designer.sample_rate), designer.sample_rate, tts_seed, batch_id))
            last = {i for i, _ in call}
            yield DirectEvent("tts", call[-1][0], [], done, total, desc)
            # 2.-3. convert and rank every line whose takes are all generated
            for i in sorted(last):
                line = lines[i]
                if len(line.tts) < k:
                    continue
                for event in self._convert_line(i, line, k, seed + i * k, project, user, progress, options,
                                                done, total, {"run_id": run_id, "run_seed": seed, "k": k}):
                    done = event.done
                    yield event

    def _convert_line(self, index: int, line: _Line, k: int, first_seed: int, project: str, user: str | None,
                      progress: Progress, options: DirectOptions, done: int, total: int,
                      run: dict) -> Iterator[DirectEvent]:
        spec = line.spec
        groups = {"each": [[j] for j in range(k)], "batch": [list(range(k))],
                  "first": [[0], list(range(1, k))] if k > 1 else [[0]]}[options.schedule]
        settings = {"language": spec.language, "convert_style": spec.convert_style, "schedule": options.schedule,
                    "cast_member_id": line.member_id, "tts": options.tts, "vc": options.vc,
                    "diffusion_steps": options.diffusion_steps or self.studio.settings.default_diff_steps, **run}
        speaker = self.studio.speaker() if line.reference is not None else None
        if speaker is not None:
            settings["speaker_encoder"] = speaker.name
        for group in groups:
            seeds = [(first_seed + j) % SEED_RANGE for j in group]
            desc = f"Converting take {group[0] + 1}" + (f"-{group[-1] + 1}" if len(group) > 1 else "") + f" of {k}"
            progress(done, total, desc)
            waves, sr = self._convert(spec.backend, line.voice, [line.tts[j][0] for j in group], line.tts[0][1],
                                      seeds, settings, lambda stage, f, desc=desc: progress(
                                          done + f * len(group), total, f"{desc}: {stage}"))
            scores = speaker.similarity(line.reference, [(w, sr) for w in waves]) if speaker else [None] * len(waves)
            for j, wave, similarity, take_seed in zip(group, waves, scores, seeds):
                tts_wave, tts_sr, tts_seed, batch_id = line.tts[j]
                line.takes.append(self.studio.takes.add(
                    project=project, user=user, line=spec.line, direction=spec.direction, instruct=line.instruct,
                    cast_member=spec.cast_member, backend=spec.backend, rvc_voice=spec.rvc_voice,
                    settings=settings, seed=take_seed, tts_seed=tts_seed, batch_id=batch_id, audio=(wave, sr),
                    tts_audio=(tts_wave, tts_sr), similarity=None if similarity is None else float(similarity)))
                done += 1
                yield DirectEvent("take", index, list(line.takes), done, total, f"take {j + 1} of {k} ready")
        if speaker is None:  # RVC without a cast member: similarity to the takes' own centroid voice
            line.takes = self._centroid_scores(line.takes)
        ranked = self.rank(line.takes, self.scorer)
        line.ranked = True
        best = [t.take_id for t in line.takes].index(ranked[0].take_id) + 1
        yield DirectEvent("ranked", index, ranked, done, total, f"{k} take(s) ranked; best: take {best}")

    def _convert(self, backend: str, voice: Voice, sources: list[np.ndarray], sr: int, seeds: list[int],
                 settings: dict, on_stage) -> tuple[list[np.ndarray], int]:
        if backend == "rvc":
            out = self.studio.rvc().convert(sources, sr, voice, seeds=seeds, **settings["vc"])
        else:
            out = self.studio.seed_vc().convert(sources, sr, voice, diffusion_steps=settings["diffusion_steps"],
                                                convert_style=settings["convert_style"], seeds=seeds,
                                                on_stage=on_stage, **settings["vc"])
        return out.takes, out.sample_rate

    def _centroid_scores(self, takes: list[Take]) -> list[Take]:
        speaker = self.studio.speaker()
        embeddings = np.stack([speaker.embed(*load_audio(t.audio_path)) for t in takes])
        centroid = embeddings.mean(axis=0)
        centroid /= np.linalg.norm(centroid) or 1.0
        return [self.studio.takes.set_scores(t.take_id, similarity=float(e @ centroid))
                for t, e in zip(takes, embeddings)]


def _pad(wave: np.ndarray, sr: int) -> np.ndarray:
    short = int(MIN_TTS_S * sr) - wave.size
    return np.concatenate([wave, np.zeros(short, np.float32)]) if short > 0 else wave

