// /api/docs: renders the OpenAPI document (/api/v1/openapi.json) as a readable page.
// Built with DOM calls and textContent only: nothing from the document is parsed as HTML.
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  // Descriptions use `code` spans and blank-line paragraphs; nothing else is rendered.
  function prose(text) {
    var wrap = el("div", { class: "prose" });
    String(text || "").split(/\n\s*\n/).forEach(function (para) {
      var p = el("p");
      para.split("`").forEach(function (part, i) {
        p.appendChild(i % 2 ? el("code", {}, [part]) : document.createTextNode(part));
      });
      wrap.appendChild(p);
    });
    return wrap;
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  function schemaLink(name) {
    return el("a", { href: "#schema-" + name }, [name]);
  }

  // A one-line description of a schema's type, with links to named schemas.
  function typeOf(schema) {
    if (!schema) return el("span", {}, ["any"]);
    if (schema.$ref) return schemaLink(refName(schema.$ref));
    var alts = schema.oneOf || schema.anyOf || schema.allOf;
    if (alts) {
      var span = el("span");
      alts.forEach(function (s, i) {
        if (i) span.appendChild(document.createTextNode(schema.allOf ? " & " : " | "));
        span.appendChild(typeOf(s));
      });
      return span;
    }
    var type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "object";
    if (schema.items) return el("span", {}, ["array of ", typeOf(schema.items)]);
    if (schema.enum) type += " (" + schema.enum.join(", ") + ")";
    if (schema.format) type += " (" + schema.format + ")";
    return el("span", {}, [type]);
  }

  function propertiesTable(schema) {
    var props = schema.properties || {};
    var required = schema.required || [];
    var rows = Object.keys(props).map(function (name) {
      var p = props[name];
      return el("tr", {}, [
        el("td", {}, [el("code", {}, [name]), required.indexOf(name) >= 0 ? " *" : ""]),
        el("td", {}, [typeOf(p)]),
        el("td", {}, [p.description || ""]),
      ]);
    });
    if (!rows.length) return null;
    return el("table", {}, [
      el("thead", {}, [el("tr", {}, [el("th", {}, ["field (* required)"]), el("th", {}, ["type"]), el("th", {}, ["about"])])]),
      el("tbody", {}, rows),
    ]);
  }

  function jsonSchemaOf(content) {
    var types = Object.keys(content || {});
    return types.length ? { type: types[0], schema: content[types[0]].schema } : null;
  }

  function operation(method, path, op) {
    var section = el("section", { class: "op", id: (op.operationId || method + path) });
    section.appendChild(el("h3", {}, [el("span", { class: "method " + method }, [method.toUpperCase()]), " ", el("code", {}, [path])]));
    if (op.summary) section.appendChild(el("p", { class: "summary" }, [op.summary]));
    if (op.description) section.appendChild(prose(op.description));
    var scopes = ((op.security || [])[0] || {}).api_key;
    if (scopes) {
      section.appendChild(el("p", { class: "scope" }, ["Scope: ", scopes.length ? el("code", {}, [scopes.join(", ")]) : "any key"]));
    }
    if (op.parameters && op.parameters.length) {
      section.appendChild(el("h4", {}, ["Parameters"]));
      section.appendChild(el("table", {}, [el("tbody", {}, op.parameters.map(function (p) {
        return el("tr", {}, [
          el("td", {}, [el("code", {}, [p.name]), p.required ? " *" : ""]),
          el("td", {}, [p.in]),
          el("td", {}, [typeOf(p.schema)]),
          el("td", {}, [p.description || ""]),
        ]);
      }))]));
    }
    if (op.requestBody) {
      var body = jsonSchemaOf(op.requestBody.content);
      section.appendChild(el("h4", {}, ["Request body"]));
      if (op.requestBody.description) section.appendChild(prose(op.requestBody.description));
      if (body) section.appendChild(el("p", {}, [el("code", {}, [body.type]), " ", typeOf(body.schema)]));
    }
    section.appendChild(el("h4", {}, ["Answers"]));
    var responses = op.responses || {};
    section.appendChild(el("table", { class: "answers" }, [el("tbody", {}, Object.keys(responses).map(function (status) {
      var r = responses[status];
      var body = jsonSchemaOf(r.content);
      return el("tr", {}, [
        el("td", {}, [el("strong", {}, [status])]),
        el("td", {}, [prose(r.description)]),
        el("td", {}, [body ? typeOf(body.schema) : ""]),
      ]);
    }))]));
    return section;
  }

  function render(root, doc) {
    root.textContent = "";
    root.appendChild(el("h1", {}, [doc.info.title + " (v" + doc.info.version + ")"]));
    root.appendChild(prose(doc.info.description));
    root.appendChild(el("p", {}, [el("a", { href: root.getAttribute("data-spec") }, ["The OpenAPI " + doc.openapi + " document (JSON)"])]));
    var schemes = (doc.components || {}).securitySchemes || {};
    Object.keys(schemes).forEach(function (name) {
      root.appendChild(el("h2", {}, ["Authentication"]));
      root.appendChild(prose(schemes[name].description));
    });
    var byTag = {};
    var order = (doc.tags || []).map(function (t) { return t.name; });
    Object.keys(doc.paths || {}).forEach(function (path) {
      Object.keys(doc.paths[path]).forEach(function (method) {
        var op = doc.paths[path][method];
        var tag = (op.tags || ["other"])[0];
        if (order.indexOf(tag) < 0) order.push(tag);
        (byTag[tag] = byTag[tag] || []).push(operation(method, path, op));
      });
    });
    var nav = el("nav", {}, [el("h2", {}, ["Contents"])]);
    var list = el("ul");
    nav.appendChild(list);
    root.appendChild(nav);
    order.forEach(function (tag) {
      if (!byTag[tag]) return;
      list.appendChild(el("li", {}, [el("a", { href: "#tag-" + tag }, [tag])]));
      root.appendChild(el("h2", { id: "tag-" + tag }, [tag]));
      var about = (doc.tags || []).filter(function (t) { return t.name === tag; })[0];
      if (about && about.description) root.appendChild(el("p", {}, [about.description]));
      byTag[tag].forEach(function (s) { root.appendChild(s); });
    });
    list.appendChild(el("li", {}, [el("a", { href: "#schemas" }, ["schemas"])]));
    root.appendChild(el("h2", { id: "schemas" }, ["Schemas"]));
    var schemas = (doc.components || {}).schemas || {};
    Object.keys(schemas).sort().forEach(function (name) {
      var s = schemas[name];
      var section = el("section", { class: "schema", id: "schema-" + name }, [el("h3", {}, [name])]);
      if (s.description) section.appendChild(prose(s.description));
      if (s.properties) {
        section.appendChild(propertiesTable(s));
      } else {
        section.appendChild(el("p", {}, [typeOf(s)]));
      }
      (s.allOf || s.oneOf || []).forEach(function (part) {
        if (part.properties) section.appendChild(propertiesTable(part));
      });
      root.appendChild(section);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("api-docs");
    if (!root) return;
    fetch(root.getAttribute("data-spec"), { headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (doc) { render(root, doc); })
      .catch(function (e) {
        root.appendChild(el("p", { class: "error" }, ["Could not load the document: " + e.message]));
      });
  });
})();
