package identity

// Windows reports every writable file as mode 0666: the Unix permission check would refuse
// every key file, so access control is left to the file's ACL.
const modeBitsMeaningful = false
