using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;

namespace Lodestar.Docs.Tests;

/// <summary>
/// Packs every project under src/ as <c>dotnet pack -c Release</c> does, and checks that NuGet has nothing to warn
/// about and that each package carries its README, the MIT license expression and the project's metadata.
/// </summary>
public sealed class PackageTests
{
    private static readonly TimeSpan s_packTimeout = TimeSpan.FromMinutes(5);

    public static TheoryData<string> PackableProjects()
    {
        var data = new TheoryData<string>();
        foreach (var project in Directory.GetFiles(Path.Combine(DocSnippets.RepositoryRoot, "src"), "*.csproj", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileNameWithoutExtension(project));
        }

        return data;
    }

    [Fact]
    public void License_AtRepositoryRoot_IsMit()
    {
        var license = File.ReadAllText(Path.Combine(DocSnippets.RepositoryRoot, "LICENSE"));

        Assert.StartsWith("MIT License", license, StringComparison.Ordinal);
        Assert.Contains("Permission is hereby granted, free of charge", license, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(PackableProjects))]
    public async Task Pack_Release_NoWarningsAndReadmeLicenseAndMetadataInPackage(string name)
    {
        // Arrange
        var project = Path.Combine(DocSnippets.RepositoryRoot, "src", name, name + ".csproj");
        var output = Directory.CreateTempSubdirectory("lodestar-pack-");
        try
        {
            // Act: reuse the Release build when there is one (the suite builds first), else build.
            var built = File.Exists(Path.Combine(DocSnippets.RepositoryRoot, "src", name, "bin", "Release", "net10.0", name + ".dll"));
            string[] arguments = ["pack", project, "-c", "Release", "-o", output.FullName, "-nologo", "-nodeReuse:false", "-p:UseSharedCompilation=false"];
            var (exitCode, log) = await RunAsync("dotnet", built ? [.. arguments, "--no-build"] : arguments);

            // Assert
            Assert.True(exitCode == 0, log);
            var warnings = log.Split('\n').Where(l => l.Contains("warning", StringComparison.OrdinalIgnoreCase) || l.Contains("missing a readme", StringComparison.Ordinal)).ToList();
            Assert.True(warnings.Count == 0, string.Join('\n', warnings));
            var package = Assert.Single(output.GetFiles(name + ".*.nupkg"));
            using var zip = ZipFile.OpenRead(package.FullName);
            var nuspecEntry = Assert.Single(zip.Entries, e => e.FullName == name + ".nuspec");
            XNamespace ns;
            XElement metadata;
            using (var stream = nuspecEntry.Open())
            {
                var nuspec = XDocument.Load(stream);
                ns = nuspec.Root!.Name.Namespace;
                metadata = nuspec.Root.Element(ns + "metadata")!;
            }

            var license = metadata.Element(ns + "license");
            Assert.NotNull(license);
            Assert.Equal("expression", license.Attribute("type")?.Value);
            Assert.Equal("MIT", license.Value);
            Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
            var readme = Assert.Single(zip.Entries, e => e.FullName == "README.md");
            using (var reader = new StreamReader(readme.Open()))
            {
                Assert.StartsWith("# " + name + "\n", await reader.ReadToEndAsync(), StringComparison.Ordinal);
            }

            Assert.Equal("https://github.com/lodestar-dotnet/lodestar", metadata.Element(ns + "projectUrl")?.Value);
            Assert.Equal("https://github.com/lodestar-dotnet/lodestar", metadata.Element(ns + "repository")?.Attribute("url")?.Value);
            Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")?.Value));
            Assert.Contains("service-discovery", metadata.Element(ns + "tags")?.Value ?? string.Empty, StringComparison.Ordinal);
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Log)> RunAsync(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = DocSnippets.RepositoryRoot,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(s_packTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // Only the pack this test started is stopped.
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet pack did not finish within {s_packTimeout.TotalMinutes} minutes.");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
