"""Scene mode: import a script, cast its characters, render every line K times, pick, assemble, export.

A render reads as stages:
  0. check the scene: every character cast, every line directable; lines already picked are done
     (a render that died is resumed, not redone), lines with K takes but no pick are only picked;
  1. the remaining lines go through `Director.direct_lines` in ONE run, ordered by character so a
     character's lines share the batched TTS calls; each take is recorded for its line as it is made;
  2. as each line's takes are ranked, every take is transcribed and scored (`score_take`: similarity,
     intelligibility, duration sanity; pick.RULE) and the best is picked and reported;
  3. assembly (studio/mix.py) is cheap and happens on demand, so a re-roll or a swap re-renders
     nothing but the one line.
A line edited or re-cast while its takes are being made gets them back stale (studio/scene.py: each take
carries the state of the line it was made from): it is not picked, and the next render redoes it.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from .audio import load_audio, save_audio
from .direct import DirectOptions, LineSpec
from .engines.asr import intelligibility
from .library import CastMember, LibraryError
from .mix import MIX, Assembly, Clip, MixOptions, assemble, srt, webvtt
from .pick import RULE, duration_check, pick_score
from .scene import CastEntry, Scene, SceneError, SceneStore
from .script import ScriptOptions, character_key, check_script, parse_script
from .takes import EXPORT_FORMATS, Take

if TYPE_CHECKING:
    from .service import Studio

# Scene lines go through the Director, so they obey its bounds.
SCENE_SCRIPT = ScriptOptions(max_line_chars=DirectOptions.LINE_MAX_CHARS,
                             max_direction_chars=DirectOptions.DIRECTION_MAX_CHARS)
NEUTRAL_DIRECTION = "natural, conversational delivery"   # a line with no direction and no default
SHEET_FIELDS = ("line", "character", "text", "direction", "start_s", "end_s", "take_id", "takes", "similarity",
                "intelligibility", "transcript", "wer", "duration_s", "words_per_s", "duration_check", "score",
                "recogniser", "rule")

Progress = Callable[[float, float, str], None]


@dataclass(frozen=True)
class SceneEvent:
    """What a render reports: kind "progress" (work inside the run), "picked" (line `line`, 1-based, has its
    take) or "done"; `lines` is the scene's line table at that moment."""
    kind: str
    line: int | None
    message: str
    lines: list[dict]
    picked: int
    total: int


def join_direction(line_direction: str, default: str, limit: int = DirectOptions.DIRECTION_MAX_CHARS) -> str:
    """The line's own direction first, then the character's default, within the Director's bound."""
    parts = [p.strip().rstrip(".") for p in (line_direction, default) if p and p.strip()]
    text = ". ".join(parts) or NEUTRAL_DIRECTION
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class SceneRenderer:
    """Scene mode for a Studio (its Director, takes library, ASR); see the module docstring."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio
        self.store = SceneStore(studio.settings.home)
        self.options: DirectOptions | None = None   # Director settings for scene renders (None = its defaults)

    def for_user(self, user: str | None) -> "SceneRenderer":
        """Scene mode as `user` sees it (logins on): their own scenes only; None = without logins."""
        view = copy.copy(self)
        view.store = self.store.for_owner(user)
        return view

    # -- script and cast ------------------------------------------------------------------------

    def import_script(self, script: str, name: str, fmt: str = "auto") -> dict:
        """Parse a script and keep it as scene `name` (replacing its script; unchanged lines keep their takes)."""
        scene = self.store.save_script(name, parse_script(script, fmt, SCENE_SCRIPT))
        return self.summary(scene)

    def cast(self, name: str, character: str, cast_member: str | None, backend: str = "seed-vc",
             rvc_voice: str | None = None, direction: str = "", language: str = "auto") -> dict:
        """Give a character a voice: a cast member (Seed-VC) or an RVC voice, a default direction, a language."""
        backend = str(backend or "seed-vc").strip().lower()
        member = str(cast_member or "").strip() or None
        if member is not None:
            member = self.studio.library.get(member)
        elif backend == "seed-vc":
            raise SceneError("pick a cast member: Seed-VC converts the character's lines to their voice")
        voice = str(rvc_voice or "").strip() or None
        if backend == "rvc":
            if voice is None:
                raise SceneError("pick an RVC voice for this character (add one in the Convert tab)")
            voice = self.studio.rvc_voices.get(voice).name
        direction = " ".join(str(direction or "").split())
        if len(direction) > DirectOptions.DIRECTION_MAX_CHARS:
            raise SceneError(f"the default direction is {len(direction)} characters; keep it under "
                             f"{DirectOptions.DIRECTION_MAX_CHARS}")
        entry = CastEntry(character, member and member.name, backend, voice if backend == "rvc" else None, direction,
                          str(language or "auto").strip().lower(), member and member.id)
        return self.summary(self.store.set_cast(name, entry))

    def summary(self, scene: Scene | str) -> dict:
        """Characters (with their cast), lines (with status and pick) and notes of a scene."""
        scene = self.store.get(scene) if isinstance(scene, str) else scene
        cast = []
        for character in scene.script.characters:
            e = scene.cast.get(character_key(character))
            cast.append({"character": character, "cast_member": self._member_name(e) if e else None,
                         "backend": e.backend if e else None, "rvc_voice": e.rvc_voice if e else None,
                         "direction": e.direction if e else "", "language": e.language if e else None})
        return {"name": scene.name, "title": scene.script.title, "format": scene.script.format,
                "characters": list(scene.script.characters), "cast": cast, "lines": self.lines(scene),
                "notes": [{"before_line": n.before + 1, "kind": n.kind, "text": n.text} for n in scene.script.notes]}

    def lines(self, scene: Scene) -> list[dict]:
        rows = []
        for i, line in enumerate(scene.script.lines):
            take_id, info = scene.picks.get(i, (None, {}))
            rows.append({"line": i + 1, "character": line.character, "text": line.text,
                         "direction": line.direction,
                         "status": "picked" if take_id else "stale" if i in scene.stale else "pending",
                         "takes": len(scene.takes.get(i, [])), "take_id": take_id,
                         "similarity": info.get("similarity"), "intelligibility": info.get("intelligibility"),
                         "score": info.get("score"), "duration_check": info.get("duration_check")})
        return rows

    def member(self, entry: CastEntry) -> CastMember | None:
        """The character's cast member as the library has it now (renamed or not); a deleted one is an error,
        never replaced by another member that took its name."""
        if entry.cast_member is None:
            return None
        try:
            found = self.studio.library.get(entry.member_id) if entry.member_id else None
        except LibraryError:
            found = None
        if found is None or found.id != entry.member_id:
            raise SceneError(f"{entry.character}'s cast member {entry.cast_member!r} was deleted; "
                             f"cast {entry.character} again")
        return found

    def _member_name(self, entry: CastEntry) -> str | None:
        try:
            member = self.member(entry)
        except SceneError:
            return f"{entry.cast_member} (deleted)"
        return member and member.name

    # -- scoring --------------------------------------------------------------------------------

    def asr_details(self, take: Take) -> dict | None:
        """The take's transcript and WER (computed once, then kept)."""
        details = self.store.transcript(take.take_id)
        if details is None:
            wave, sr = load_audio(take.audio_path)
            result = intelligibility(self.studio.asr(), wave, sr, take.line, take.settings.get("language", "auto"))
            if result is None:
                return None
            self.store.set_transcript(take.take_id, result.transcript, result.wer, result.cer, result.recogniser)
            self.studio.takes.set_scores(take.take_id, intelligibility=result.score)
            details = self.store.transcript(take.take_id)
        return details

    def pick_info(self, take: Take) -> dict:
        """Everything the pick rule looked at for one take (the take sheet's columns)."""
        details = self.asr_details(take)
        wave, sr = load_audio(take.audio_path)
        duration = duration_check(wave, sr, take.line)
        intel = None if details is None else max(0.0, 1.0 - details["wer"])
        return {"similarity": take.similarity, "intelligibility": intel,
                "transcript": details and details["transcript"], "wer": details and details["wer"],
                "recogniser": details and details["recogniser"], "duration_s": duration.seconds,
                "words_per_s": duration.words_per_s, "duration_check": duration.verdict,
                "score": round(pick_score(take.similarity, intel, duration), 4), "rule": RULE}

    def score_take(self, take: Take) -> float:
        """The pick rule as a Director scorer: similarity AND intelligibility, plausible length first."""
        return self.pick_info(take)["score"]

    def note_intelligibility(self, take: Take) -> float | None:
        """Cast & Direct's scorer hook: transcribe the take and record its intelligibility (its tab and take
        sheet show it), keep ranking by similarity there. `Director.rank(takes, score_take)` ranks by both."""
        self.asr_details(take)
        return take.similarity

    # -- render ---------------------------------------------------------------------------------

    def _specs(self, scene: Scene, lines: list[int]) -> list[LineSpec]:
        specs = []
        for i in lines:
            line, entry = scene.script.lines[i], scene.entry(i)
            member = self.member(entry)
            specs.append(LineSpec(line.text, join_direction(line.direction, entry.direction), member and member.id,
                                  entry.backend, entry.rvc_voice, entry.language))
        return specs

    def _pick(self, scene: Scene, line: int, take_ids: list[str]) -> Take:
        takes = [self.studio.takes.get(t) for t in take_ids]
        best = self.studio.director.rank(takes, self.score_take)[0]
        n = len(takes)
        self.store.set_pick(scene.id, line, best.take_id, {**self.pick_info(best), "takes": n, "k": n})
        return best

    def render(self, name: str, k: int = DirectOptions.K_DEFAULT, seed: int | None = None,
               user: str | None = None, on_progress: Progress | None = None, lines: list[int] | None = None,
               redo: bool = False) -> Iterator[SceneEvent]:
        """Render the scene's pending lines (or `lines`, 0-based; `redo` makes new takes for them)."""
        scene = self.store.get(name)
        check_script(scene.script, SCENE_SCRIPT)   # a scene kept before a rule was added (a wordless line)
        if scene.uncast():
            raise SceneError(f"not cast yet: {', '.join(scene.uncast())}; give each character a voice first")
        k = self.studio.director._check_k(k)
        wanted = range(len(scene.script.lines)) if lines is None else lines
        todo = [i for i in wanted if redo or i not in scene.picks]
        for i in todo:
            self.member(scene.entry(i))   # a deleted cast member stops the render before any work
        return self._render(scene, todo, k, seed, user, on_progress or (lambda *_: None), redo)

    def _render(self, scene: Scene, todo: list[int], k: int, seed: int | None, user: str | None,
                progress: Progress, redo: bool) -> Iterator[SceneEvent]:
        def event(kind: str, line: int | None, message: str) -> SceneEvent:
            now = self.store.get(scene.name)
            return SceneEvent(kind, line, message, self.lines(now), len(now.picks), len(now.script.lines))

        # 0. lines whose K takes were made before a restart are only picked
        ready = [] if redo else [i for i in todo if len(scene.takes.get(i, [])) >= k]
        for i in ready:
            self._pick(scene, i, scene.takes[i])
            yield event("picked", i + 1, f"line {i + 1}: picked from the takes kept before")
        # 1. one Director run for the rest, a character's lines side by side (they share TTS calls)
        run = sorted((i for i in todo if i not in ready),
                     key=lambda i: (character_key(scene.script.lines[i].character), i))
        if not run:
            yield event("done", None, "every line is picked")
            return
        made: dict[int, list[str]] = {i: [] for i in run}
        stale: list[str] = []
        states = {i: scene.state(i) for i in run}   # what this run's takes are made from
        events = self.studio.director.direct_lines(self._specs(scene, run), k, seed, scene.project, user, progress,
                                                   self.options)
        for ev in events:
            i = run[ev.line]
            if ev.kind == "take":
                take = ev.takes[-1]
                self.store.add_take(scene.id, i, take.take_id, states[i])
                made[i].append(take.take_id)
                yield event("progress", i + 1, f"line {i + 1}: {ev.message}")
            elif ev.kind == "ranked":
                # 2. transcribe, score, pick among this run's takes of the line (unless it changed meanwhile)
                now = self.store.get(scene.name)
                if i >= len(now.script.lines) or now.state(i) != states[i]:
                    stale.append(str(i + 1))
                    yield event("progress", i + 1, f"line {i + 1} was edited or re-cast during the render: its "
                                                   f"takes are stale; render again to redo it")
                    continue
                progress(ev.done, ev.total, f"line {i + 1}: scoring {len(made[i])} take(s)")
                best = self._pick(scene, i, made[i])
                yield event("picked", i + 1, f"line {i + 1} picked: take {made[i].index(best.take_id) + 1} "
                                             f"of {len(made[i])}")
            else:
                yield event("progress", None, ev.message)
        yield event("done", None, f"{len(run) - len(stale)} line(s) rendered" + (
            f"; line(s) {', '.join(stale)} were edited or re-cast meanwhile: render again" if stale else ""))

    def reroll(self, name: str, line: int, k: int | None = None, seed: int | None = None,
               user: str | None = None, on_progress: Progress | None = None) -> Iterator[SceneEvent]:
        """New takes of one line (1-based), picked among themselves; every other line stays as it is."""
        scene = self.store.get(name)
        i = self._line_index(scene, line)
        k = k or scene.picks.get(i, ("", {}))[1].get("k") or DirectOptions.K_DEFAULT   # the K it was rendered with
        return self.render(name, k, seed, user, on_progress, [i], redo=True)

    def swap(self, name: str, line: int, take_id: str) -> dict:
        """Use another of a line's takes (one made for it, by any render or re-roll)."""
        scene = self.store.get(name)
        i = self._line_index(scene, line)
        if take_id not in scene.takes.get(i, []):
            raise SceneError(f"take {take_id!r} was not made for line {i + 1}; choose one of its "
                             f"{len(scene.takes.get(i, []))} take(s)")
        take = self.studio.takes.get(take_id)
        k = scene.picks.get(i, ("", {}))[1].get("k", len(scene.takes[i]))
        self.store.set_pick(scene.id, i, take_id, {**self.pick_info(take), "takes": len(scene.takes[i]), "k": k,
                                                   "swapped": True})
        return self.summary(scene.name)

    def line_takes(self, name: str, line: int) -> list[dict]:
        """A line's takes, best first, with their scores (to audition and swap)."""
        scene = self.store.get(name)
        i = self._line_index(scene, line)
        picked = scene.picks.get(i, (None,))[0]
        takes = [self.studio.takes.get(t) for t in scene.takes.get(i, [])]
        return [{**t.as_dict(), "picked": t.take_id == picked, "audio_path": str(t.audio_path)}
                for t in sorted(takes, key=lambda t: (t.rank is None, t.rank or 0, t.created))]

    @staticmethod
    def _line_index(scene: Scene, line) -> int:
        try:
            n = int(line)
        except (TypeError, ValueError):
            raise SceneError(f"line must be a line number, got {line!r}") from None
        if not 1 <= n <= len(scene.script.lines):
            raise SceneError(f"line {n}: scene {scene.name!r} has lines 1 to {len(scene.script.lines)}")
        return n - 1

    # -- assembly and export --------------------------------------------------------------------

    def assemble(self, name: str, options: MixOptions = MIX) -> tuple[Scene, Assembly]:
        """The picked takes in script order -> mix, stems, cues (re-run after every re-roll or swap)."""
        scene = self.store.get(name)
        pending = [str(i + 1) for i in range(len(scene.script.lines)) if i not in scene.picks]
        if pending:
            stale = " (edited or re-cast since their takes were made)" if scene.stale else ""
            raise SceneError(f"lines not rendered yet: {', '.join(pending[:10])}"
                             f"{' …' if len(pending) > 10 else ''}{stale}; render the scene first")
        clips, rates = [], []
        for i, line in enumerate(scene.script.lines):
            wave, sr = load_audio(self.studio.takes.get(scene.picks[i][0]).audio_path)
            clips.append(Clip(line.character, line.text, wave, sr))
            rates.append(sr)
        return scene, assemble(clips, max(rates), options)

    def take_sheet(self, scene: Scene, assembly: Assembly) -> list[dict]:
        rows = []
        for cue, line in zip(assembly.cues, scene.script.lines):
            take_id, info = scene.picks[cue.index]
            start, end = cue.seconds(assembly.sr)
            rows.append({"line": cue.index + 1, "character": line.character, "text": line.text,
                         "direction": line.direction, "start_s": round(start, 3), "end_s": round(end, 3),
                         "take_id": take_id, **{k: info.get(k) for k in SHEET_FIELDS if k in info}})
        return rows

    def export(self, name: str, fmt: str = "wav", options: MixOptions = MIX) -> Path:
        """One zip: mix, a stem per character, SRT + WebVTT subtitles, the take sheet (CSV + JSON)."""
        fmt = str(fmt or "").strip().lower().lstrip(".")
        if fmt not in EXPORT_FORMATS:
            raise SceneError(f"export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
        scene, mix = self.assemble(name, options)
        out_dir = self.studio.takes_dir / "scenes"
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"scene-{uuid.uuid4().hex[:12]}.zip"
        partial, tmp = target.with_suffix(".partial"), out_dir / f"{target.stem}.tmp.{fmt}"
        sheet = self.take_sheet(scene, mix)
        try:
            with zipfile.ZipFile(partial, "w") as z:
                for arc, wave in [(f"mix.{fmt}", mix.mix)] + [
                        (f"stems/{n:02d}-{_slug(c)}.{fmt}", w) for n, (c, w) in enumerate(mix.stems.items(), 1)]:
                    save_audio(tmp, wave, mix.sr)
                    z.write(tmp, arc)
                z.writestr("subtitles.srt", srt(mix.cues, mix.sr))
                z.writestr("subtitles.vtt", webvtt(mix.cues, mix.sr))
                z.writestr("takesheet.json", json.dumps({"scene": scene.name, "rule": RULE, "sample_rate": mix.sr,
                                                         "lines": sheet}, indent=1, ensure_ascii=False))
                text = io.StringIO()
                writer = csv.DictWriter(text, SHEET_FIELDS)
                writer.writeheader()
                writer.writerows({k: r.get(k, RULE if k == "rule" else None) for k in SHEET_FIELDS} for r in sheet)
                z.writestr("takesheet.csv", text.getvalue())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
        return target


def _slug(name: str) -> str:
    """A character name as a file name inside the zip (never a path on disk)."""
    return re.sub(r"[^\w-]+", "_", name, flags=re.UNICODE).strip("_")[:40] or "character"
