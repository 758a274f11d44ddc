"""A reviewer that speaks Streamlit's websocket protocol instead of driving a browser.

Twenty Chromiums on a 2-core machine measure the browsers, not the app servers (load average
70-114 in `bench_team_load.py`). This client does what the browser does over the wire, and
nothing else: it asks for a script run of the Review page, reads the elements the run draws
(protobuf `ForwardMsg`s), signs in through the form, and presses a decision button by
sending its trigger, as Streamlit's frontend does for a keyboard shortcut. A press counts as
shown as saved when the run it started draws the next place in the queue. Its cost per press
is a few protobuf messages, so many of them fit beside the servers on one machine.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from team_load import PASSWORD, App, Outcome, Press, choice

POSITION = re.compile(r"Sample \**(\d+)\** · ([\d,]+) of")
FINISHED = "Queue finished"


@dataclass
class Drawn:
    """What one script run drew: its widgets and the text of its markdown elements."""

    buttons: list[Any] = field(default_factory=list)  # Button protos
    text_inputs: list[Any] = field(default_factory=list)  # TextInput protos
    texts: list[str] = field(default_factory=list)

    def button(self, *, label: str | None = None, shortcut: str | None = None) -> Any:
        for button in self.buttons:
            if label is not None and button.label != label:
                continue
            if shortcut is not None and button.shortcut.upper() != shortcut.upper():
                continue
            return button
        raise LookupError(f"no button {label or shortcut!r}; drawn: {self.summary()}")

    def text_input(self, label: str) -> Any:
        for widget in self.text_inputs:
            if widget.label == label:
                return widget
        raise LookupError(f"no text input {label!r}; drawn: {self.summary()}")

    def position(self) -> tuple[int, int] | None:
        """(sample id, place) shown, or None when the queue is finished or nothing is."""
        for text in self.texts:
            if found := POSITION.search(text):
                return int(found[1]), int(found[2].replace(",", ""))
        return None

    @property
    def finished(self) -> bool:
        return any(FINISHED in text for text in self.texts)

    def summary(self) -> str:
        labels = [b.label for b in self.buttons] + [t.label for t in self.text_inputs]
        return f"widgets {labels}, texts {[t[:80] for t in self.texts[:8]]}"


class WsSession:
    """One browser tab's worth of Streamlit session, over one websocket."""

    def __init__(self, url: str, page: str):
        self.stream_url = url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.page = page  # asked for by name on every run, as the browser's URL path does
        self.ws: Any = None

    async def __aenter__(self) -> WsSession:
        import websockets

        self.ws = await websockets.connect(
            self.stream_url,
            subprotocols=["streamlit"],
            max_size=None,  # type: ignore[list-item]
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def run(self, widgets: list[Any] = ()) -> Drawn:  # type: ignore[assignment]
        """Ask for a script run with these widget states; what the (last) run drew."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        state = message.rerun_script
        state.page_name = self.page
        state.widget_states.widgets.extend(widgets)
        await self.ws.send(message.SerializeToString())
        return await self._drawn()

    async def _drawn(self) -> Drawn:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        drawn = Drawn()
        while True:
            message = ForwardMsg()
            message.ParseFromString(await self.ws.recv())
            kind = message.WhichOneof("type")
            if kind == "new_session":
                drawn = Drawn()  # a new run began
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                what = element.WhichOneof("type")
                if what == "button":
                    drawn.buttons.append(element.button)
                elif what == "text_input":
                    drawn.text_inputs.append(element.text_input)
                elif what == "markdown":
                    drawn.texts.append(element.markdown.body)
                elif what == "alert":
                    drawn.texts.append(element.alert.body)
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
                if status == "FINISHED_SUCCESSFULLY":
                    return drawn
                if status == "FINISHED_WITH_COMPILE_ERROR":
                    raise RuntimeError(f"the page failed to compile: {drawn.summary()}")
                # FINISHED_EARLY_FOR_RERUN: the page reran itself; a fragment's run: ignored


def trigger(widget: Any) -> Any:
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    return WidgetState(id=widget.id, trigger_value=True)


def text(widget: Any, value: str) -> Any:
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    return WidgetState(id=widget.id, string_value=value)


async def sign_in(session: WsSession, name: str, password: str) -> Drawn:
    """The Review page, signed in through its form."""
    drawn = await session.run()
    if drawn.position() is not None or drawn.finished:
        return drawn
    states = [
        text(drawn.text_input("Name"), name),
        text(drawn.text_input("Password"), password),
        trigger(drawn.button(label="Sign in")),
    ]
    drawn = await session.run(states)
    if drawn.position() is None and not drawn.finished:
        raise AssertionError(f"{name}: not signed in; {drawn.summary()}")
    return drawn


async def review(session: WsSession, name: str, server: int, presses: int) -> list[Press]:
    """Sign in and press `presses` decision keys (`team_load.choice`), each as soon as the
    previous run has finished; every press must move the queue on by one."""
    drawn = await sign_in(session, name, PASSWORD)
    done: list[Press] = []
    while len(done) < presses and not drawn.finished:
        shown = drawn.position()
        if shown is None:
            raise AssertionError(f"{name}: no sample shown; {drawn.summary()}")
        sample_id, place = shown
        key = choice(name, sample_id)
        started = time.monotonic()
        drawn = await session.run([trigger(drawn.button(shortcut=key))])
        seconds = time.monotonic() - started
        after = drawn.position()
        if not drawn.finished and (after is None or after[1] != place + 1):
            raise AssertionError(f"{name}: {key!r} on place {place} drew {drawn.summary()}")
        done.append(Press(name, server, sample_id, key, seconds))
    return done


def review_over_protocol(apps: list[App], reviewers: list[str], presses: int) -> Outcome:
    """Every reviewer (a session of its own, reviewer n on app n mod len(apps)) presses
    `presses` keys at once; what they saw, for `team_load.check`."""

    async def everyone() -> Outcome:
        outcome = Outcome()

        async def one(n: int, name: str) -> None:
            async with WsSession(apps[n % len(apps)].url, "Review") as session:
                outcome.saved += await review(session, name, n % len(apps), presses)

        started = time.monotonic()
        await asyncio.gather(*(one(n, name) for n, name in enumerate(reviewers)))
        outcome.seconds = time.monotonic() - started
        return outcome

    return asyncio.run(everyone())
