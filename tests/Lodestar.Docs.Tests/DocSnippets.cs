using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Lodestar.Docs.Tests;

/// <summary>
/// The C# blocks of the README and docs/, compiled as a reader would paste them into a new project.
/// </summary>
/// <remarks>
/// A block fenced as <c>```csharp</c> is a complete file: it must compile as it stands, with the implicit usings of a
/// new ASP.NET Core project (<c>Microsoft.NET.Sdk.Web</c>) and references to every Lodestar package. A block fenced as
/// <c>```cs</c> is a fragment shown for reading and is not compiled.
/// </remarks>
public static partial class DocSnippets
{
    private static readonly string[] s_implicitUsings =
    [
        "System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Net.Http.Json",
        "System.Threading", "System.Threading.Tasks", "Microsoft.AspNetCore.Builder", "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Http", "Microsoft.AspNetCore.Routing", "Microsoft.Extensions.Configuration",
        "Microsoft.Extensions.DependencyInjection", "Microsoft.Extensions.Hosting", "Microsoft.Extensions.Logging",
    ];

    private static readonly Lazy<MetadataReference[]> s_references = new(LoadReferences);

    /// <summary>Gets the repository root (the folder holding Lodestar.slnx).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Reads every compiled block of one markdown file, with the line it starts on.</summary>
    public static IReadOnlyList<(int Line, string Code)> Read(string relativePath)
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot, relativePath));
        var blocks = new List<(int, string)>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```csharp")
            {
                continue;
            }

            var start = i + 1;
            var end = start;
            while (end < lines.Length && lines[end].Trim() != "```")
            {
                end++;
            }

            blocks.Add((start + 1, string.Join('\n', lines[start..end])));
            i = end;
        }

        return blocks;
    }

    /// <summary>Compiles one block; returns the errors (empty when it compiles) and the assembly image.</summary>
    public static (IReadOnlyList<string> Errors, byte[]? Image) Compile(string code, string name)
    {
        var tree = CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest), path: name);
        var usings = CSharpSyntaxTree.ParseText(string.Concat(s_implicitUsings.Select(u => $"global using global::{u};\n")), new CSharpParseOptions(LanguageVersion.Latest));
        var hasStatements = tree.GetCompilationUnitRoot().Members.OfType<GlobalStatementSyntax>().Any();
        var compilation = CSharpCompilation.Create(
            "Snippet_" + SafeName().Replace(name, "_"),
            [usings, tree],
            s_references.Value,
            new CSharpCompilationOptions(hasStatements ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
        return (errors, result.Success ? image.ToArray() : null);
    }

    private static MetadataReference[] LoadReferences()
    {
        // Touch the Lodestar assemblies so that they are in the output folder's load context.
        _ = typeof(Lodestar.LodestarOptions).Assembly;
        var paths = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var path in ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator))
        {
            paths.TryAdd(Path.GetFileName(path), path);
        }

        foreach (var path in Directory.GetFiles(AppContext.BaseDirectory, "*.dll"))
        {
            var file = Path.GetFileName(path);
            if (file.StartsWith("Lodestar.", StringComparison.Ordinal) && !file.Contains(".Tests", StringComparison.Ordinal) && file != "Lodestar.Testing.dll")
            {
                paths[file] = path;
            }
            else
            {
                paths.TryAdd(file, path);
            }
        }

        return [.. paths.Values.Where(IsManaged).Select(p => MetadataReference.CreateFromFile(p))];
    }

    private static bool IsManaged(string path)
    {
        try
        {
            _ = AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Lodestar.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Lodestar.slnx) was not found above the test's folder.");
    }

    [GeneratedRegex("[^A-Za-z0-9]")]
    private static partial Regex SafeName();
}
