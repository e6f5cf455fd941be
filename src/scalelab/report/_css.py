"""The one style sheet of every HTML report (inline: the file opens offline)."""

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem;
color:#1d1d1f;line-height:1.45;overflow-wrap:anywhere}
h1{font-size:1.5rem;margin-bottom:.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.answers{margin:.2rem 0 1rem}.answer{margin:.5rem 0 .2rem;font-size:1.05rem}.answer.best{font-weight:600}
details{margin:.1rem 0 .6rem}summary{cursor:pointer;color:#4c78a8;font-size:.85rem}
details .num{font-size:.85rem;color:#333}
.q{color:#333;background:#f5f7fa;padding:.6rem .8rem;border-left:4px solid #4c78a8}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .55rem;border-bottom:1px solid #e3e3e3;text-align:right;overflow-wrap:normal}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff;z-index:1;
box-shadow:1px 0 0 #e3e3e3}
td.desc,th:last-child{white-space:normal;min-width:12rem;text-align:left;color:#555}
figure{margin:1rem 0}.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.5rem}
.panels svg{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.2rem 1rem;list-style:none;padding:0;margin:.3rem 0;font-size:.85rem}
.legend li{margin:0}.sw{display:inline-block;width:.9rem;height:.9rem;border-radius:2px;vertical-align:-.1rem;
margin-right:.3rem}.legend small{color:#555}
figcaption{font-size:.85rem;color:#555}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.8rem}
li{margin:.35rem 0}.id{font-family:monospace;background:#eef;padding:0 .25rem}.bad{color:#b00020}
table[data-role=environment] td,table[data-role=spec] td{overflow-wrap:anywhere;text-align:left}
@media (max-width:600px){body{padding:.5rem}h1{font-size:1.2rem}.panels{grid-template-columns:1fr}
table[data-role=results],table[data-role=results] tbody,table[data-role=results] tr,table[data-role=results] td{
display:block;width:100%}table[data-role=results] thead{display:none}
table[data-role=results] tr{border-bottom:2px solid #ccc;padding:.3rem 0}
table[data-role=results] td{text-align:left;position:static;box-shadow:none;border:0;padding:.1rem .3rem;min-width:0}
table[data-role=results] td[data-label]::before{content:attr(data-label) ": ";color:#555}}
"""
