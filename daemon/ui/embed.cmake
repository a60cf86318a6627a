# The service-map page, embedded into xrayd at build time: embed_assets.cmake turns the
# files below into ui_assets.c (a C array per file and the table ui_route.c serves from),
# regenerated whenever one of them changes. Plain CMake, so the build needs no other tool.
# Included by daemon/CMakeLists.txt; sets XRAYD_UI_ASSETS_C for xrayd_core's sources.
set(XRAYD_UI_FILES index.html app.css app.js core.js graph.js panel.js traces.js favicon.svg)
set(XRAYD_UI_ASSETS_C ${CMAKE_CURRENT_BINARY_DIR}/ui_assets.c)
set(_xrayd_ui_deps ${CMAKE_CURRENT_LIST_DIR}/embed_assets.cmake)
foreach(f ${XRAYD_UI_FILES})
  list(APPEND _xrayd_ui_deps ${CMAKE_CURRENT_LIST_DIR}/${f})
endforeach()
string(REPLACE ";" "," _xrayd_ui_list "${XRAYD_UI_FILES}")
add_custom_command(
  OUTPUT ${XRAYD_UI_ASSETS_C}
  COMMAND ${CMAKE_COMMAND} -DUI_DIR=${CMAKE_CURRENT_LIST_DIR} -DUI_FILES=${_xrayd_ui_list}
          -DOUT=${XRAYD_UI_ASSETS_C} -P ${CMAKE_CURRENT_LIST_DIR}/embed_assets.cmake
  DEPENDS ${_xrayd_ui_deps}
  COMMENT "Embedding the service-map page (daemon/ui)"
  VERBATIM)
