"""State mappers: HTML and accessibility trees to compact id-tagged element lists."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dreamgym_sdk.experience import HtmlStateMapper, IdentityMapper, StateMapper

SHOP = """<!DOCTYPE html>
<html><head><title>Shop</title><style>.x { color: red }</style>
<script>var s = "<button>not a button</button>";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/cart" bid="c7">Cart (2)</a></nav>
<h1>Running   shoes</h1>
<form><label for="q">Search</label><input id="q" name="q" value="shoes">
<input type="hidden" name="csrf" value="abc123">
<button type="submit"><img src="s.png" alt="Go"></button></form>
<div style="display: none"><button>Secret deal</button></div>
<div hidden><a href="/x">Hidden link</a></div>
<ul><li>Trail runner &amp; co &mdash; $59.99 <a href="/p/1">Details</a>
<li>Road runner &mdash; $49.00 <button disabled>Sold out</button>
</ul>
<p>Size: <select name="size"><option>S<option selected>M<option>L</select></p>
<label><input type="checkbox" name="gift" checked> Gift wrap</label>
<input type="password" name="pw" value="hunter2" placeholder="Password">
<textarea name="note" placeholder="Note">leave at door</textarea>
<table><tr><th>Item<th>Price</tr><tr><td>Socks<td>$5</tr></table>
<span aria-hidden="true">decorative</span>
<div role="button" tabindex="0">Buy now</div>
<input type="submit" value="Place order">
<a href="/next">Next page</a>
</body></html>"""

EXPECTED = """[1] link "Home"
[c7] link "Cart (2)"
Running shoes
[2] textbox "Search" value="shoes"
[3] button "Go"
Trail runner & co — $59.99
[4] link "Details"
Road runner — $49.00
[5] button "Sold out" disabled
Size:
[6] combobox "size" value="M" options=["S", "M", "L"]
[7] checkbox "Gift wrap" checked
[8] textbox "Password"
[9] textbox "Note" value="leave at door"
Item | Price
Socks | $5
[10] button "Buy now"
[11] button "Place order"
[12] link "Next page\""""


def test_protocol() -> None:
    assert isinstance(IdentityMapper(), StateMapper)
    assert isinstance(HtmlStateMapper(), StateMapper)
    assert IdentityMapper().map("<b>x</b>") == "<b>x</b>"


def test_realistic_shop_page() -> None:
    assert HtmlStateMapper().map(SHOP) == EXPECTED


def test_skips_scripts_styles_and_hidden_elements() -> None:
    state = HtmlStateMapper().map(SHOP)
    for hidden in (
        "not a button",
        "color",
        "Secret deal",
        "Hidden link",
        "csrf",
        "abc123",
        "decorative",
        "Shop",
    ):
        assert hidden not in state
    assert "hunter2" not in state, "password values are never shown"


def test_ids_are_stable_and_avoid_attribute_ids() -> None:
    mapper = HtmlStateMapper()
    assert mapper.map(SHOP) == mapper.map(SHOP)
    html = '<button bid="2">Two</button><button>A</button><button>B</button><button bid="x9">X</button>'
    assert mapper.map(html).splitlines() == [
        '[2] button "Two"',
        '[1] button "A"',
        '[3] button "B"',
        '[x9] button "X"',
    ]
    with_html_ids = HtmlStateMapper(id_attributes=("id",)).map(
        '<button id="buy">Buy</button><a href="#">Go</a>'
    )
    assert with_html_ids.splitlines() == ['[buy] button "Buy"', '[1] link "Go"']


def test_label_sources() -> None:
    html = (
        '<input aria-label="Email address" placeholder="you@example.com">'
        '<input placeholder="City">'
        '<input name="zip">'
        '<button title="Close"></button>'
        '<a href="/h"><img alt="Home"></a>'
        '<input type="radio" name="ship" value="fast" checked>'
    )
    assert HtmlStateMapper().map(html).splitlines() == [
        '[1] textbox "Email address"',
        '[2] textbox "City"',
        '[3] textbox "zip"',
        '[4] button "Close"',
        '[5] link "Home"',
        '[6] radio "ship" checked',
    ]


def test_aria_roles_onclick_and_quotes() -> None:
    html = (
        '<span role="checkbox" aria-checked="true">Subscribe</span>'
        '<div onclick="go()">Say "hi"</div>'
        '<li role="tab" aria-disabled="true">Reviews</li>'
    )
    assert HtmlStateMapper().map(html).splitlines() == [
        '[1] checkbox "Subscribe" checked',
        '[2] clickable "Say \\"hi\\""',
        '[3] tab "Reviews" disabled',
    ]


def test_malformed_html_does_not_break_the_listing() -> None:
    html = "<div><p>Unclosed <b>bold <a href='/a'>link</div></span><p>After</p><button>Last"
    lines = HtmlStateMapper().map(html).splitlines()
    assert lines[0] == "Unclosed bold" and '[1] link "link"' in lines
    assert lines[-2:] == ["After", '[2] button "Last"']


def test_long_labels_and_state_budget() -> None:
    html = "<button>" + "very " * 50 + "long</button>" + "".join(f"<p>line {i}</p>" for i in range(100))
    state = HtmlStateMapper(max_label_chars=20, max_chars=200).map(html)
    assert state.splitlines()[0] == '[1] button "very very very very…"'
    assert len(state) <= 200 and state.endswith("\n…")


def test_browsergym_accessibility_tree() -> None:
    dump = """RootWebArea 'Shop', focused
\t[a12] heading 'Running shoes'
\t[a13] textbox 'Search' value='shoes', focused
\t[a14] button 'Buy now'
\t\tStaticText 'Price: $59'
\t[a15] checkbox 'Gift' checked='true'
\t[a16] checkbox 'Fast' checked='false'
\t[a17] generic
\t[a18] link 'It\\'s here'"""
    assert HtmlStateMapper().map(dump).splitlines() == [
        "Running shoes",
        '[a13] textbox "Search" value="shoes"',
        '[a14] button "Buy now"',
        "Price: $59",
        '[a15] checkbox "Gift" checked',
        '[a16] checkbox "Fast"',
        '[a18] link "It\'s here"',
    ]


def test_playwright_aria_snapshot() -> None:
    dump = """- banner:
  - link "Home" [ref=e2]:
    - /url: /
- heading "Running shoes" [level=1] [ref=e3]
- textbox "Search" [ref=e4]: shoes
- button "Buy now" [ref=e5]
- text: "Price: $59"
- paragraph: Free shipping
- checkbox "Gift" [checked] [ref=e6]
- button "Disabled" [disabled] [ref=e7]
Just a plain line: with a colon"""
    assert HtmlStateMapper().map(dump).splitlines() == [
        '[e2] link "Home"',
        "Running shoes",
        '[e4] textbox "Search" value="shoes"',
        '[e5] button "Buy now"',
        "Price: $59",
        "Free shipping",
        '[e6] checkbox "Gift" checked',
        '[e7] button "Disabled" disabled',
        "Just a plain line: with a colon",
    ]


TAGS = [
    "div",
    "p",
    "a",
    "button",
    "input",
    "select",
    "option",
    "label",
    "script",
    "li",
    "td",
    "span",
    "textarea",
]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([f"<{t}>" for t in TAGS] + [f"</{t}>" for t in TAGS]),
            st.sampled_from(
                ['<a href="x">', '<input type="checkbox" checked>', "<div hidden>", '<b bid="7">']
            ),
            st.text(max_size=15),
        ),
        max_size=40,
    )
)
def test_never_crashes_on_tag_soup(parts: list[str]) -> None:
    state = HtmlStateMapper().map("".join(parts))
    assert isinstance(state, str)
