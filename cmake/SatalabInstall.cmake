# Install rules: headers, the static library satalab_core and a CMake package,
# so that another project can do
#   find_package(satalab 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE satalab::core)
# (tests/consumer/ is such a project, built by ctest against an install).
include(CMakePackageConfigHelpers)

set(SATALAB_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/satalab)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/include/satalab DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS satalab_core EXPORT satalabTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT satalabTargets NAMESPACE satalab:: DESTINATION ${SATALAB_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/satalabConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/satalabConfig.cmake
                              INSTALL_DESTINATION ${SATALAB_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the interface.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/satalabConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/satalabConfig.cmake ${PROJECT_BINARY_DIR}/satalabConfigVersion.cmake
        DESTINATION ${SATALAB_INSTALL_CMAKEDIR})
