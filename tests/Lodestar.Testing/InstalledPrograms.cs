namespace Lodestar.Testing;

/// <summary>Finds the real servers the tests and scenarios start (installed from Debian by the README's test command).</summary>
public static class InstalledPrograms
{
    /// <summary>
    /// Returns the path of the program <paramref name="name"/> in a folder of the PATH, or else in /usr/bin or /usr/sbin
    /// (where Debian puts the servers, which a PATH without the sbin folders misses), or <see langword="null"/> when it
    /// is not installed.
    /// </summary>
    public static string? Find(string name)
    {
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Append("/usr/bin").Append("/usr/sbin"))
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
