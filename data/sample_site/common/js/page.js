// TRS-style pagination: writes the page links of a listing column.
function createPageHTML(_nPageCount, _nCurrIndex, _sPageName, _sPageExt) {
  if (_nPageCount == null || _nPageCount <= 1) { return; }
  var name = function (i) { return i == 0 ? _sPageName + "." + _sPageExt : _sPageName + "_" + i + "." + _sPageExt; };
  var out = [];
  if (_nCurrIndex > 0) { out.push('<a href="' + name(_nCurrIndex - 1) + '">上一页</a>'); }
  for (var i = 0; i < _nPageCount; i++) {
    out.push(i == _nCurrIndex ? '<span class="cur">' + (i + 1) + '</span>'
                              : '<a href="' + name(i) + '">' + (i + 1) + '</a>');
  }
  if (_nCurrIndex < _nPageCount - 1) { out.push('<a href="' + name(_nCurrIndex + 1) + '">下一页</a>'); }
  document.write(out.join(" "));
}
