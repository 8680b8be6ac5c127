// 团体注册 / 团体信息: the parent-group search (上级团体) filled from /groups/search.json,
// and the fields shown only where they apply (credit code for legal persons, staff
// headcount for civil units, join password for the password policy). A file, not an
// inline script (CSP). Without JavaScript the exact parent name typed is used; the
// server judges every field either way.
(function () {
  "use strict";

  var form = document.getElementById("group-registration-form") || document.getElementById("group-edit-form");
  if (!form) { return; }

  var show = function (id, visible) {
    var box = document.getElementById(id);
    if (box) { box.style.display = visible ? "" : "none"; }
  };

  // --- Parent group search ---
  var nameInput = document.getElementById("parent_name");
  var idInput = document.getElementById("parent_id");
  var choices = document.getElementById("parent-choices");
  if (nameInput && idInput && choices) {
    var url = nameInput.getAttribute("data-search-url");
    var timer = null;
    var search = function () {
      var q = nameInput.value.trim();
      if (!q) { choices.style.display = "none"; return; }
      fetch(url + "?q=" + encodeURIComponent(q), {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (groups) {
          while (choices.firstChild) { choices.removeChild(choices.firstChild); }
          groups.forEach(function (g) {
            var option = document.createElement("option");
            option.value = g.id;
            option.textContent = g.region ? g.name + " (" + g.region + ")" : g.name;
            option.setAttribute("data-name", g.name);
            choices.appendChild(option);
          });
          choices.style.display = groups.length ? "" : "none";
        });
    };
    nameInput.addEventListener("input", function () {
      idInput.value = "";  // typed again: the exact name decides until a group is chosen
      clearTimeout(timer);
      timer = setTimeout(search, 250);
    });
    choices.addEventListener("change", function () {
      var option = choices.options[choices.selectedIndex];
      if (!option) { return; }
      idInput.value = option.value;
      nameInput.value = option.getAttribute("data-name");
      choices.style.display = "none";
    });
  }

  // --- Fields that apply only sometimes ---
  var typeSelect = document.getElementById("group_type");
  var civilUnit = form.getAttribute("data-civil-unit");
  var toggleHeadcount = function () {
    var type = typeSelect ? typeSelect.value : form.getAttribute("data-group-type");
    var field = document.getElementById("staff_headcount");
    show("staff-headcount", type === civilUnit || (field && field.value));
  };
  if (typeSelect) { typeSelect.addEventListener("change", toggleHeadcount); }
  toggleHeadcount();

  var legal = document.getElementById("legal-person");
  var toggleCredit = function () {
    var checked = legal && legal.querySelector("input:checked");
    show("credit-code", !checked || checked.value === "1");
  };
  if (legal) { legal.addEventListener("change", toggleCredit); toggleCredit(); }

  var policy = document.getElementById("join_policy");
  var passwordPolicy = form.getAttribute("data-password-policy");
  var togglePassword = function () { show("join-password", policy && policy.value === passwordPolicy); };
  if (policy) { policy.addEventListener("change", togglePassword); togglePassword(); }
}());
