using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Reads kubeconfig files as kubectl does: <c>KUBECONFIG</c> (a list of files, the first definition of a name wins)
/// or <c>~/.kube/config</c>; the current context or a named one; relative paths resolve against the defining file.
/// </summary>
internal static class KubeconfigLoader
{
    private static readonly IDeserializer s_deserializer = new DeserializerBuilder().IgnoreUnmatchedProperties().Build();

    /// <summary>Returns the kubeconfig files to read: the explicit path, else <c>KUBECONFIG</c>, else <c>~/.kube/config</c>.</summary>
    public static IReadOnlyList<string> GetPaths(string? explicitPath, Func<string, string?> environment, string? homeDirectory)
    {
        if (!string.IsNullOrEmpty(explicitPath))
        {
            return [explicitPath];
        }

        var variable = environment("KUBECONFIG");
        if (!string.IsNullOrEmpty(variable))
        {
            return variable.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }

        var home = homeDirectory ?? environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return [Path.Combine(home, ".kube", "config")];
    }

    /// <summary>Loads the cluster of <paramref name="contextName"/> (or the current context) from the files.</summary>
    /// <exception cref="KubernetesApiException">A file is missing or malformed, the context is unknown, or its user authenticates in a way Lodestar does not support.</exception>
    public static ClusterConfig Load(IReadOnlyList<string> paths, string? contextName)
    {
        var merged = new KubeconfigFile { Clusters = [], Contexts = [], Users = [] };
        var existing = 0;
        foreach (var path in paths)
        {
            if (!File.Exists(path))
            {
                continue;
            }

            existing++;
            var file = Parse(File.ReadAllText(path), path);
            var directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "";
            merged.CurrentContext ??= string.IsNullOrEmpty(file.CurrentContext) ? null : file.CurrentContext;
            foreach (var cluster in NonEmpty(file.Clusters, "clusters", path))
            {
                cluster.Directory = directory;
                merged.Clusters!.Add(cluster);
            }

            merged.Contexts!.AddRange(NonEmpty(file.Contexts, "contexts", path));
            foreach (var user in NonEmpty(file.Users, "users", path))
            {
                user.Directory = directory;
                merged.Users!.Add(user);
            }
        }

        if (existing == 0)
        {
            throw new KubernetesApiException($"No kubeconfig file found (looked for {string.Join(", ", paths)}). Set Lodestar:Kubernetes:KubeconfigPath or KUBECONFIG, or run in a pod.");
        }

        return Resolve(merged, contextName, string.Join(", ", paths));
    }

    /// <summary>Returns a list's items, or fails naming the file, the list and the position of an empty item (<c>- </c> alone in YAML).</summary>
    private static List<T> NonEmpty<T>(List<T>? items, string list, string path)
        where T : class
    {
        var result = new List<T>(items?.Count ?? 0);
        for (var i = 0; i < (items?.Count ?? 0); i++)
        {
            // YAML gives null for an empty item, whatever the declared element type says.
            result.Add((T?)items![i] ?? throw new KubernetesApiException($"Kubeconfig file {path} has an empty item at position {i} of '{list}'."));
        }

        return result;
    }

    /// <summary>Parses one file's text.</summary>
    internal static KubeconfigFile Parse(string yaml, string path)
    {
        try
        {
            return s_deserializer.Deserialize<KubeconfigFile?>(yaml) ?? new KubeconfigFile();
        }
        catch (YamlException ex)
        {
            throw new KubernetesApiException($"Kubeconfig file {path} is not valid YAML at line {ex.Start.Line}: {ex.Message}", ex);
        }
    }

    private static ClusterConfig Resolve(KubeconfigFile config, string? contextName, string files)
    {
        var name = string.IsNullOrEmpty(contextName) ? config.CurrentContext : contextName;
        if (string.IsNullOrEmpty(name))
        {
            throw new KubernetesApiException($"Kubeconfig {files} has no current-context; name one with Lodestar:Kubernetes:Context (or --context).");
        }

        var context = config.Contexts!.FirstOrDefault(c => c.Name == name)?.Context
                      ?? throw new KubernetesApiException($"Kubeconfig {files} has no context '{name}' (contexts: {string.Join(", ", config.Contexts!.Select(c => c.Name))}).");
        var cluster = config.Clusters!.FirstOrDefault(c => c.Name == context.Cluster)
                      ?? throw new KubernetesApiException($"Context '{name}' in kubeconfig {files} names cluster '{context.Cluster}', which is not defined.");
        if (cluster.Cluster?.Server is not { Length: > 0 } serverText || !Uri.TryCreate(serverText, UriKind.Absolute, out var server)
            || server.Scheme is not ("https" or "http"))
        {
            throw new KubernetesApiException($"Cluster '{cluster.Name}' of context '{name}' in kubeconfig {files} has no valid https server URL.");
        }

        var displayName = $"Kubernetes API server {server.GetLeftPart(UriPartial.Authority)} (kubeconfig context '{name}')";
        var tlsServerName = string.IsNullOrWhiteSpace(cluster.Cluster.TlsServerName) ? null : cluster.Cluster.TlsServerName.Trim();
        if (tlsServerName is not null && Uri.CheckHostName(tlsServerName) is not (UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6))
        {
            throw new KubernetesApiException($"Cluster '{cluster.Name}' of context '{name}' in kubeconfig {files} has tls-server-name '{tlsServerName}', which is not a host name.");
        }

        X509Certificate2Collection? authorities = null;
        if (!string.IsNullOrEmpty(cluster.Cluster.CertificateAuthorityData))
        {
            authorities = ReadCertificates(DecodeBase64(cluster.Cluster.CertificateAuthorityData, "certificate-authority-data", displayName), "certificate-authority-data", displayName);
        }
        else if (!string.IsNullOrEmpty(cluster.Cluster.CertificateAuthority))
        {
            var path = ReadablePath(cluster.Cluster.CertificateAuthority, cluster.Directory, "certificate-authority", displayName);
            authorities = ReadCertificates(File.ReadAllText(path), path, displayName);
        }

        var userEntry = string.IsNullOrEmpty(context.User) ? null : config.Users!.FirstOrDefault(u => u.Name == context.User);
        if (!string.IsNullOrEmpty(context.User) && userEntry is null)
        {
            throw new KubernetesApiException($"Context '{name}' in kubeconfig {files} names user '{context.User}', which is not defined.");
        }

        var user = userEntry?.User ?? new KubeconfigUser();
        var userDirectory = userEntry?.Directory ?? "";
        ExecCredentialConfig? execConfig = null;
        if (user.Exec is { } exec)
        {
            execConfig = ReadExec(exec, userDirectory, name, context.User, displayName, cluster.Cluster, authorities);
        }

        if (user.AuthProvider is { } provider)
        {
            throw new KubernetesApiException(
                $"User '{context.User}' of context '{name}' for {displayName} authenticates with the auth-provider '{provider.Name}', which Lodestar does not support. "
                + "Use a token, a token file or a client certificate.");
        }

        var tokenFile = string.IsNullOrEmpty(user.TokenFile) ? null : ReadablePath(user.TokenFile, userDirectory, "tokenFile", displayName);
        var secrets = new List<string>();
        var clientCertificate = ReadClientCertificate(user, userDirectory, displayName, secrets);
        if (!string.IsNullOrEmpty(user.Token))
        {
            secrets.Add(user.Token);
        }

        return new ClusterConfig
        {
            Server = server,
            DisplayName = displayName,
            Namespace = string.IsNullOrEmpty(context.Namespace) ? null : context.Namespace,
            Token = string.IsNullOrEmpty(user.Token) ? null : user.Token,
            TokenFile = string.IsNullOrEmpty(user.Token) ? tokenFile : null,
            ClientCertificate = clientCertificate,
            Secrets = secrets,
            CertificateAuthorities = authorities,
            InsecureSkipTlsVerify = cluster.Cluster.InsecureSkipTlsVerify,
            TlsServerName = tlsServerName,
            Exec = execConfig,
        };
    }

    /// <summary>Checks and resolves a user's <c>exec</c> section as client-go's clientcmd does.</summary>
    private static ExecCredentialConfig ReadExec(KubeconfigExec exec, string directory, string contextName, string? userName, string displayName,
        KubeconfigCluster cluster, X509Certificate2Collection? authorities)
    {
        var where = $"The exec credential plugin of user '{userName}' of context '{contextName}' for {displayName}";
        if (string.IsNullOrWhiteSpace(exec.Command))
        {
            throw new KubernetesApiException($"{where} has no command.");
        }

        var command = exec.Command.Trim();
        where = $"The exec credential plugin '{command}' of user '{userName}' of context '{contextName}' for {displayName}";
        if (exec.ApiVersion is not (ExecCredentialConfig.V1 or ExecCredentialConfig.V1Beta1))
        {
            throw new KubernetesApiException(string.IsNullOrEmpty(exec.ApiVersion)
                ? $"{where} has no apiVersion; use {ExecCredentialConfig.V1} (or {ExecCredentialConfig.V1Beta1})."
                : $"{where} has apiVersion '{exec.ApiVersion}', which Lodestar does not speak; use {ExecCredentialConfig.V1} (or {ExecCredentialConfig.V1Beta1}).");
        }

        switch (exec.InteractiveMode)
        {
            case null or "" or "Never" or "IfAvailable":
                break;
            case "Always":
                throw new KubernetesApiException(
                    $"{where} has interactiveMode: Always, so it needs a terminal to prompt on; Lodestar runs unattended and never offers one. "
                    + "Use a plugin mode that does not prompt (interactiveMode: Never or IfAvailable), or log in beforehand so the plugin has a cached credential.");
            default:
                throw new KubernetesApiException($"{where} has interactiveMode '{exec.InteractiveMode}'; expected Never, IfAvailable or Always.");
        }

        var environment = new List<KeyValuePair<string, string>>();
        for (var i = 0; i < (exec.Env?.Count ?? 0); i++)
        {
            var variable = exec.Env![i];
            if (variable is null || string.IsNullOrEmpty(variable.Name))
            {
                throw new KubernetesApiException($"{where} has an env entry without a name at position {i}.");
            }

            environment.Add(new(variable.Name, variable.Value ?? ""));
        }

        // As client-go does: a relative command with a separator is relative to the kubeconfig; a bare name is looked up on PATH.
        var resolved = !Path.IsPathRooted(command) && command.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? Path.GetFullPath(Path.Combine(directory, command))
            : command;
        string? authorityPem = null;
        if (authorities is { Count: > 0 })
        {
            var pem = new StringBuilder();
            foreach (var authority in authorities)
            {
                pem.Append(authority.ExportCertificatePem()).Append('\n');
            }

            authorityPem = pem.ToString();
        }

        return new ExecCredentialConfig
        {
            Command = command,
            ResolvedCommand = resolved,
            Args = exec.Args is { } args ? [.. args.Select(a => a ?? "")] : [],
            Environment = environment,
            ApiVersion = exec.ApiVersion,
            InstallHint = exec.InstallHint,
            ProvideClusterInfo = exec.ProvideClusterInfo,
            ContextName = contextName,
            Server = cluster.Server!,
            CertificateAuthorityPem = authorityPem,
            TlsServerName = string.IsNullOrWhiteSpace(cluster.TlsServerName) ? null : cluster.TlsServerName.Trim(),
            InsecureSkipTlsVerify = cluster.InsecureSkipTlsVerify,
        };
    }

    /// <summary>Reads one or more PEM certificates.</summary>
    internal static X509Certificate2Collection ReadCertificates(string pem, string origin, string displayName)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPem(pem);
        }
        catch (CryptographicException ex)
        {
            throw new KubernetesApiException($"The certificate authority in {origin} for {displayName} is not a valid PEM certificate: {ex.Message}", ex);
        }

        if (collection.Count == 0)
        {
            throw new KubernetesApiException($"The certificate authority in {origin} for {displayName} holds no PEM certificate.");
        }

        return collection;
    }

    private static X509Certificate2? ReadClientCertificate(KubeconfigUser user, string directory, string displayName, List<string> secrets)
    {
        string? certificatePem = null;
        string? keyPem = null;
        if (!string.IsNullOrEmpty(user.ClientCertificateData))
        {
            certificatePem = DecodeBase64(user.ClientCertificateData, "client-certificate-data", displayName);
        }
        else if (!string.IsNullOrEmpty(user.ClientCertificate))
        {
            certificatePem = File.ReadAllText(ReadablePath(user.ClientCertificate, directory, "client-certificate", displayName));
        }

        if (!string.IsNullOrEmpty(user.ClientKeyData))
        {
            keyPem = DecodeBase64(user.ClientKeyData, "client-key-data", displayName);
        }
        else if (!string.IsNullOrEmpty(user.ClientKey))
        {
            keyPem = File.ReadAllText(ReadablePath(user.ClientKey, directory, "client-key", displayName));
        }

        if (keyPem is not null)
        {
            AddKeySecrets(user.ClientKeyData, keyPem, secrets);
        }

        if (certificatePem is null && keyPem is null)
        {
            return null;
        }

        if (certificatePem is null || keyPem is null)
        {
            throw new KubernetesApiException($"The kubeconfig user for {displayName} has a client {(certificatePem is null ? "key" : "certificate")} but no client {(certificatePem is null ? "certificate" : "key")}; both are needed.");
        }

        try
        {
            using var pemCertificate = X509Certificate2.CreateFromPem(certificatePem, keyPem);
            // A PEM-loaded key is ephemeral; a PKCS#12 round trip gives TLS a key it can use on every platform.
            return X509CertificateLoader.LoadPkcs12(pemCertificate.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException ex)
        {
            throw new KubernetesApiException($"The client certificate or key of the kubeconfig user for {displayName} is not valid PEM, or they do not match: {ex.Message}", ex);
        }
    }

    /// <summary>Records the client key as the kubeconfig holds it, as PEM, and each base64 line of its body.</summary>
    private static void AddKeySecrets(string? keyData, string keyPem, List<string> secrets)
    {
        if (!string.IsNullOrWhiteSpace(keyData))
        {
            secrets.Add(keyData.Trim());
        }

        secrets.Add(keyPem);
        foreach (var line in keyPem.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            // A body line of a PEM block is key material on its own; the BEGIN/END lines are not secret.
            if (!line.StartsWith("-----", StringComparison.Ordinal) && line.Length >= 16)
            {
                secrets.Add(line);
            }
        }
    }

    private static string DecodeBase64(string data, string field, string displayName)
    {
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(data.Trim()));
        }
        catch (FormatException ex)
        {
            throw new KubernetesApiException($"The kubeconfig field {field} for {displayName} is not valid base64.", ex);
        }
    }

    private static string ReadablePath(string path, string directory, string field, string displayName)
    {
        var full = Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(directory, path));
        if (!File.Exists(full))
        {
            throw new KubernetesApiException($"The kubeconfig field {field} for {displayName} names {full}, which does not exist.");
        }

        return full;
    }
}
