// Alpine components of our template overrides (templates/unfold/), in place of inline code.

// The <body> of unfold's skeleton: which tab is open, and the sidebar (kept open or
// closed across pages in localStorage).
function etherBody() {
  var stored = localStorage.getItem("sidebarDesktopOpen");
  return {
    activeTab: "",
    sidebarMobileOpen: false,
    sidebarDesktopOpen: stored !== null ? stored === "1" : true,
    init: function () {
      var tab = this.$el.dataset.activeTab || "";
      this.activeTab = this.$el.dataset.opts ? getCurrentTab() || tab : "";
      this.$watch("sidebarDesktopOpen", function (value) {
        localStorage.setItem("sidebarDesktopOpen", value ? "1" : "0");
      });
    },
  };
}
