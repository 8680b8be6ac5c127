// 注册志愿者: cascading home-region selects (province → prefecture → county → street →
// community) loaded from /register/regions/<code>, and the birth-date fields shown only
// for ID types whose number does not carry the birth date. The server validates everything.
(function () {
  "use strict";

  var box = document.querySelector(".region-selects");
  var hidden = document.getElementById("region_code");
  if (box && hidden) {
    var base = box.getAttribute("data-url");  // ends with "/regions/"
    var placeholder = box.querySelector("option[value='']").textContent;

    var selects = function () { return Array.prototype.slice.call(box.querySelectorAll("select")); };

    var syncHidden = function () {
      var code = "";
      selects().forEach(function (s) { if (s.value) { code = s.value; } });
      hidden.value = code;
    };

    var addSelect = function (regions) {
      var select = document.createElement("select");
      select.className = "form-control region-select";
      select.style.cssText = "display:inline-block;width:auto;margin:0 4px 4px 0;";
      var empty = document.createElement("option");
      empty.value = "";
      empty.textContent = placeholder;
      select.appendChild(empty);
      regions.forEach(function (r) {
        var option = document.createElement("option");
        option.value = r.code;
        option.textContent = r.name;
        select.appendChild(option);
      });
      box.appendChild(select);
    };

    box.addEventListener("change", function (event) {
      var select = event.target;
      var all = selects();
      all.slice(all.indexOf(select) + 1).forEach(function (s) { box.removeChild(s); });
      syncHidden();
      if (!select.value) { return; }
      fetch(base + encodeURIComponent(select.value), {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (regions) { if (regions.length) { addSelect(regions); } });
    });
  }

  var idType = document.getElementById("id_type");
  var birth = document.getElementById("entered-birth");
  if (idType && birth) {
    var types = birth.getAttribute("data-types").split(",");
    var toggle = function () {
      birth.style.display = types.indexOf(idType.value) >= 0 ? "" : "none";
    };
    idType.addEventListener("change", toggle);
    toggle();
  }
}());
