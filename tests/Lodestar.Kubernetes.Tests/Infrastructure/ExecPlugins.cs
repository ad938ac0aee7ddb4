using System.Globalization;
using System.Text.Json.Nodes;

namespace Lodestar.Kubernetes.Tests.Infrastructure;

/// <summary>Writes shell-script exec credential plugins into a test's folder.</summary>
internal static class ExecPlugins
{
    /// <summary>Writes an executable <c>/bin/sh</c> script and returns its path.</summary>
    public static string WriteScript(TempDirectory directory, string name, string body)
    {
        var path = directory.Write(name, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    /// <summary>An ExecCredential as a plugin prints it.</summary>
    public static string Credential(string? token, DateTimeOffset? expires = null, string apiVersion = "client.authentication.k8s.io/v1",
        string? certificatePem = null, string? keyPem = null, string kind = "ExecCredential")
    {
        var status = new JsonObject();
        if (token is not null)
        {
            status["token"] = token;
        }

        if (expires is { } at)
        {
            status["expirationTimestamp"] = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }

        if (certificatePem is not null)
        {
            status["clientCertificateData"] = certificatePem;
        }

        if (keyPem is not null)
        {
            status["clientKeyData"] = keyPem;
        }

        return new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["status"] = status }.ToJsonString();
    }

    /// <summary>
    /// Writes a plugin that appends a line to <c>runs</c> each time it starts and prints the file <c>credential.json</c>
    /// (which the test writes and may change), and returns its path.
    /// </summary>
    public static string WriteFilePrinter(TempDirectory directory, string credentialJson)
    {
        directory.Write("credential.json", credentialJson);
        return WriteScript(directory, "print-credential.sh", $"echo run >> '{directory.Path}/runs'\ncat '{directory.Path}/credential.json'");
    }

    /// <summary>Gets how many times the plugin of <see cref="WriteFilePrinter"/> ran.</summary>
    public static int Runs(TempDirectory directory)
    {
        var path = Path.Combine(directory.Path, "runs");
        return File.Exists(path) ? File.ReadAllLines(path).Length : 0;
    }
}
