# Install rules and the Debian package. Included last from the top-level
# CMakeLists.txt so that every program target already exists.
#
#   cmake --build build --target package   ->  build/salvo_<version>_<arch>.deb
#
# The package puts the programs in /usr/bin, the reference config in /etc/salvo (a
# conffile), the systemd unit in /lib/systemd/system and creates /var/spool/salvo and
# /var/log/salvo; tools/packaging/postinst creates the "salvo" user and hands it those
# directories. Runtime dependencies come from dpkg-shlibdeps (dpkg-dev) on the binaries.

# Programs, each only if this tree builds it (salvoctl arrives with the operator issue).
foreach(_prog salvod salvoctl salvo-sink salvo-blast spool-dump)
  if(TARGET ${_prog})
    install(TARGETS ${_prog} RUNTIME DESTINATION bin)
  endif()
endforeach()

# Debian paths are absolute: /etc, /lib/systemd and /var are not under the /usr prefix.
install(FILES ${PROJECT_SOURCE_DIR}/configs/salvo.toml DESTINATION /etc/salvo
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${PROJECT_SOURCE_DIR}/configs/salvod.service DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Empty; postinst makes them salvo:salvo 0750.
install(DIRECTORY DESTINATION /var/spool/salvo)
install(DIRECTORY DESTINATION /var/log/salvo)

# Maintainer scripts and the conffile list (dpkg keeps an operator's edits to a conffile
# across upgrades and asks before replacing it).
set(_pkg_ctl ${PROJECT_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${_pkg_ctl})
file(WRITE ${_pkg_ctl}/conffiles "/etc/salvo/salvo.toml\n")

if(PROJECT_VERSION)
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
else()
  set(CPACK_PACKAGE_VERSION 0.1.0)
endif()
set(SALVO_PACKAGE_MAINTAINER "salvo developers <salvo@localhost>"
    CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME salvo)
set(CPACK_PACKAGE_VENDOR salvo)
set(CPACK_PACKAGE_CONTACT "${SALVO_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "bulk email delivery appliance (MTA) for ESPs")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SALVO_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Extended description; CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY first and indents it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "salvod accepts mail by ESMTP and a pickup directory into a durable group-commit
spool and delivers it over SMTP through per-core connection pools with
per-destination shaping, back-off, DKIM, retries, bounces, DSNs and a JSON
accounting log; salvoctl steers it. Includes salvo-sink and salvo-blast (SMTP
sink and load generator) and spool-dump.")
# salvo_<version>_<arch>.deb (no Debian revision is set).
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Library packages found by dpkg-shlibdeps are appended to this list; postinst needs
# adduser (or passwd's useradd, which it falls back to).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser | passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${_pkg_ctl}/conffiles
  ${PROJECT_SOURCE_DIR}/tools/packaging/postinst
  ${PROJECT_SOURCE_DIR}/tools/packaging/prerm
  ${PROJECT_SOURCE_DIR}/tools/packaging/postrm)
# Maintainer scripts 0755, conffiles 0644, whatever the source files' modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# `package_source` must not sweep up the build trees.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/_CPack_Packages/")

include(CPack)
